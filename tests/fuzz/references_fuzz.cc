// What a run or a policy points at: repository URLs, branch names, image references and
// patterns, protected-path patterns, the task's text. The first line is the subject; for image
// patterns, the second line is the image it is matched against.
#include "controllers/references.h"
#include "tests/fuzz/fuzz.h"

using namespace paddock::controllers;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto [first, rest] = paddock::fuzz::splitFirstLine(paddock::fuzz::text(data, size));
  auto url = parseRepositoryUrl(first);
  if (url.url && (url.url->host.empty() || !url.problem.empty())) __builtin_trap();
  (void)branchNameProblem(first);
  auto image = parseImageReference(first);
  if (image && image->registry.empty()) __builtin_trap();  // the registry is always named
  if (auto pattern = parseImagePattern(first)) {
    auto [second, _] = paddock::fuzz::splitFirstLine(rest);
    if (auto other = parseImageReference(second)) (void)imageMatches(*pattern, *other);
  }
  (void)protectedPathProblem(first);
  (void)taskTextProblem(std::string(paddock::fuzz::text(data, size)));
  return 0;
}
