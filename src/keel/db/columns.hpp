#pragma once
// A row type's columns, named once. Every query that reads the type selects list() (made from the names), so
// a column's position in the result is its place in the list by construction, and code reads a row by name:
// `r.text(kMemory["content"])`. The name's position is found at compile time: a name not in the list does not
// compile, and reading costs what reading by position does. A name may carry its table's alias ("m.name" in a
// join), and is read by its column's name alone (kInstance["name"]).
#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace keel::db {

template <size_t N>
struct Columns {
  std::array<std::string_view, N> names;

  consteval size_t operator[](std::string_view name) const {
    for (size_t i = 0; i < N; ++i) {
      const std::string_view n = names[i];
      const size_t dot = n.find('.');
      if (n == name || (dot != std::string_view::npos && n.substr(dot + 1) == name)) return i;
    }
    throw "no such column in this row type";  // operator[] runs only at compile time: a compile error
  }
  static constexpr size_t size() { return N; }
  // These columns and `more` after them (a query that reads a row type and a little more).
  template <class... More>
  consteval Columns<N + sizeof...(More)> with(More... more) const {
    Columns<N + sizeof...(More)> out{};
    for (size_t i = 0; i < N; ++i) out.names[i] = names[i];
    size_t i = N;
    ((out.names[i++] = std::string_view(more)), ...);
    return out;
  }
  // "m.id, m.namespace, ..." with `alias` "m"; "id, namespace, ..." without one.
  std::string list(std::string_view alias = {}) const {
    std::string out;
    for (size_t i = 0; i < N; ++i) {
      if (i > 0) out += ", ";
      if (!alias.empty()) (out += alias) += '.';
      out += names[i];
    }
    return out;
  }
};

template <class... Names>
Columns(Names...) -> Columns<sizeof...(Names)>;

}  // namespace keel::db
