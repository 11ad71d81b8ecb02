// Compiled, not run, by two ctest cases (CMakeLists.txt): with KEEL_NAMES_A_COLUMN a row read by a column its
// row type lists compiles; without it a read by a name the type does not list must not compile (the case is
// expected to fail), so a misspelled or dropped column is a build error, never a wrong column at run time.
#include "keel/db/columns.hpp"

constexpr keel::db::Columns kThing{"id", "name", "version"};

size_t column_of_a_thing() {
#ifdef KEEL_NAMES_A_COLUMN
  static_assert(kThing["version"] == 2 && kThing.with("score")["score"] == 3);
  return kThing["name"];
#else
  return kThing["verison"];
#endif
}
