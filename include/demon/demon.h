#pragma once

/// Umbrella header: everything demon offers.
#include "demon/channel_selection.h"
#include "demon/graph.h"
#include "demon/noise.h"
#include "demon/options.h"
#include "demon/pruner.h"
#include "demon/regularizer.h"
#include "demon/schedule.h"
#include "demon/surgery.h"
