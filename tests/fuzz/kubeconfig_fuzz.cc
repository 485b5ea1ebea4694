// A kubeconfig file, as the operator, the plugin and the audit tool read it.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "operator/kube/config.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/paddock-fuzz-kubeconfig-" + std::to_string(::getpid());
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  (void)paddock::kube::loadKubeconfig({path});
  (void)paddock::kube::loadKubeconfig({path}, "other");
  std::remove(path.c_str());
  return 0;
}
