#pragma once

#include "demon/graph.h"
#include "graph/rule_context.h"

namespace demon::detail {

/// Applies the user's couplings and pins, then turns what the walk recorded into a graph:
/// channel classes that own an axis index become units (in axis order), axes and sites are
/// rewritten in unit ids, and units with the same axes form a group. Throws
/// demon::ValueError for options that name a tensor or axis the graph does not have.
DependencyGraph assemble_graph(GraphRecord&& record, const DiscoveryOptions& options);

}  // namespace demon::detail

namespace demon {

/// The one code that fills a DependencyGraph's private fields, which the graph grants it by
/// friendship: assemble_graph's work.
class GraphAssembly {
 public:
  static DependencyGraph assemble(detail::GraphRecord&& record, const DiscoveryOptions& options);
};

}  // namespace demon
