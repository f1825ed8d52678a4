#pragma once

/// Umbrella header: everything demon offers.
#include "demon/activity.h"
#include "demon/budget.h"
#include "demon/channel_selection.h"
#include "demon/checkpoint.h"
#include "demon/criterion.h"
#include "demon/graph.h"
#include "demon/model_ref.h"
#include "demon/noise.h"
#include "demon/options.h"
#include "demon/pruner.h"
#include "demon/regularizer.h"
#include "demon/report.h"
#include "demon/safetensors.h"
#include "demon/schedule.h"
#include "demon/surgery.h"
#include "demon/warnings.h"
