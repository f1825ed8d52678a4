#pragma once
// DemonPruner's data-parallel collectives (set_process_group), defined where every translation
// unit of DemonPruner that runs a collective can see them: the public header only declares the
// nested class, so that programs including <demon/pruner.h> do not compile c10d's headers.

#include "demon/pruner.h"
#include "detail/data_parallel.h"

namespace demon {

class DemonPruner::DataParallel : public detail::DataParallel {
 public:
  using detail::DataParallel::DataParallel;
};

}  // namespace demon
