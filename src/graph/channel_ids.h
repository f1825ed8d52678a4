#pragma once

// The channel ids of the walk: a union-find whose classes become units, with the facts each id
// carries (why it is pinned, whether every read of it is provably zero when dead). Torch-free.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace demon::detail {

class ChannelIds {
 public:
  /// `count` new ids, each its own class.
  std::vector<int64_t> make(int64_t count);
  /// `count` new ids that can never be removed, for `reason`.
  std::vector<int64_t> make_pinned(int64_t count, const std::string& reason);

  /// The representative of `id`'s class (the smallest id in it).
  int64_t root(int64_t id);
  void unite(int64_t a, int64_t b);
  /// Unites a[i] with b[i] for every i both have.
  void unite_all(const std::vector<int64_t>& a, const std::vector<int64_t>& b);

  /// Keeps the first reason an id was pinned for.
  void pin(int64_t id, const std::string& reason);
  void pin_all(const std::vector<int64_t>& ids, const std::string& reason);

  /// A linear consumer reads `id` from something that is not provably zero when it is dead.
  void mark_unobservable(int64_t id);
  /// A linear consumer reads `id` from these activation sites' outputs.
  void add_reads(int64_t id, const std::vector<int32_t>& sites);

  int64_t size() const { return static_cast<int64_t>(parent_.size()); }
  const std::string& pin_reason(int64_t id) const { return pin_reason_.at(id); }
  bool unobservable(int64_t id) const { return unobservable_.at(id); }
  const std::vector<int32_t>& read_sites(int64_t id) const { return read_sites_.at(id); }

 private:
  std::vector<int64_t> parent_;
  std::vector<std::string> pin_reason_;
  std::vector<bool> unobservable_;
  std::vector<std::vector<int32_t>> read_sites_;
};

/// Where a value's zeros come from: sets of activation sites, interned. Set 0 is "none": the
/// value is not provably zero when those activations are.
class ZeroSources {
 public:
  /// The set of these sites (sorted, duplicates dropped); 0 if empty.
  int32_t intern(std::vector<int32_t> sites);
  /// The set of a value that is zero where `a`'s and `b`'s values both are (a sum, a
  /// concatenation of the same channels): their union, or 0 if either is 0.
  int32_t both(int32_t a, int32_t b);
  /// The set of a value that is zero where `a`'s or `b`'s is (a product): `a`, or `b` if `a` is 0.
  static int32_t either(int32_t a, int32_t b) { return a != 0 ? a : b; }
  const std::vector<int32_t>& sites(int32_t set) const { return sets_.at(set); }

 private:
  std::vector<std::vector<int32_t>> sets_{{}};
  std::map<std::vector<int32_t>, int32_t> index_;
};

}  // namespace demon::detail
