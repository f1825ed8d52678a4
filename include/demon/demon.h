#pragma once

/// Umbrella header: everything demon offers.
#include "demon/noise.h"
#include "demon/options.h"
#include "demon/pruner.h"
#include "demon/regularizer.h"
#include "demon/schedule.h"
