// The config file (TOML): any bytes give a Config or a ConfigError naming the problem, never a crash or
// another exception.
#include "keel/core/config.hpp"

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  struct TempDir {  // one for the process, removed at exit
    std::filesystem::path path;
    TempDir() {
      char tmpl[] = "/tmp/keel-fuzz-config-XXXXXX";
      path = mkdtemp(tmpl);
    }
    ~TempDir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const TempDir temp;
  const std::filesystem::path& dir = temp.path;
  const auto file = dir / "keel.toml";
  if (FILE* f = std::fopen(file.c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  try {
    (void)keel::load_config(file, {}, {}, dir);
  } catch (const keel::ConfigError&) {
  }
  return 0;
}
