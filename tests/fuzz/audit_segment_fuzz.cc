// An audit segment file as the store reads it back: the torn-tail scan that opening the store
// does, and verify over a store whose one segment holds the input.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "operator/audit/segment.h"
#include "operator/audit/store.h"
#include "tests/fuzz/fuzz.h"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto contents = paddock::fuzz::text(data, size);
  auto tail = paddock::audit::scanTail(contents);
  if (tail.valid_bytes + tail.torn_bytes != size) __builtin_trap();  // every byte accounted for
  static const fs::path dir = fs::temp_directory_path() / ("paddock-fuzz-audit-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    std::ofstream out(dir / paddock::audit::segmentName(1), std::ios::binary | std::ios::trunc);
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  }
  (void)paddock::audit::verifyStore(dir.string());
  return 0;
}
