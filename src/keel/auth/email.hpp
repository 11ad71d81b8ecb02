#pragma once
// The key an account's email is found by (users.email_lower): two emails a person would call the same give
// the same key. The local part is NFKC-normalized and fully case-folded (ICU's NFKC_Casefold: "Ä" and "ä",
// full-width letters and their ASCII forms, the Kelvin sign and "k" are one); the domain is in its IDNA
// (UTS #46, non-transitional) ASCII form, lower-case ("bücher.example" is "xn--bcher-kva.example"). For an
// ASCII email this is its lower-case form, as keel has always stored it.
#include <optional>
#include <string>
#include <string_view>

namespace keel::auth {

// nullopt when the email is not valid UTF-8, or its domain is not a valid IDNA name.
std::optional<std::string> email_key(std::string_view email);

}  // namespace keel::auth
