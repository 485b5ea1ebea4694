// Helpers for the audit store's tests (unit and e2e): a scratch directory and sample entries.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "operator/audit/audit.h"
#include "operator/audit/store.h"

namespace paddock::audit::testing {

// A fresh directory under $TMPDIR, removed with everything in it when the object goes.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "paddock-audit-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline Entry sampleEntry(int i, Action action = Action::ChildCreated) {
  return Entry{"paddock-operator", RunRef{"team-a", "run-" + std::to_string(i % 3), "uid-" + std::to_string(i % 3)},
               action, {{"kind", "Pod"}, {"name", "pod-" + std::to_string(i)}, {"i", i}}};
}

// Appends `n` records one call each through a fresh log on `backend`, and closes it.
inline void appendSamples(std::unique_ptr<Backend> backend, int n) {
  auto log = openAuditLog(std::move(backend));
  if (!log) throw std::runtime_error(log.error().describe());
  CancelToken never;
  for (int i = 1; i <= n; ++i) {
    auto r = (*log)->append({sampleEntry(i)}, never);
    if (!r) throw std::runtime_error(r.error().describe());
  }
}

}  // namespace paddock::audit::testing
