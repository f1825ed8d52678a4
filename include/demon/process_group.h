#pragma once
// Kept so that programs written against earlier releases still compile: everything it declared is
// in demon/distributed.h.
#include "demon/distributed.h"
