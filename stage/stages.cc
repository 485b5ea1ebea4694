#include "stage/stages.h"

#include <stdlib.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "controllers/stage_report.h"
#include "operator/common/json.h"
#include "operator/common/log.h"
#include "operator/http/client.h"
#include "stage/checks.h"
#include "stage/forge.h"
#include "stage/git.h"

namespace paddock::stage {

using nlohmann::json;

namespace {

Result<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error::local("NotFound", "cannot read " + path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n')) ++i;
  return s.substr(i);
}

std::string today() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

std::vector<std::string> splitNul(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\0', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Removes the stage's scratch git directory however the stage ends.
struct ScratchDir {
  std::string path;
  ~ScratchDir() {
    if (path.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

Outcome finish(StageResult r, int code, std::string outcome, std::string reason, std::string message) {
  r.outcome = std::move(outcome);
  r.reason = std::move(reason);
  r.message = std::move(message);
  return {std::move(r), code};
}

// The base branch's tip (refs/paddock/base) and, when the clone recorded it, the commit the agent
// started from (refs/paddock/start), fetched from the remote into the stage's own git directory.
// A remote that refuses a commit id it does not advertise gets a second, full fetch of the branch.
Status fetchBases(const Git& git, const std::string& url, const std::string& base, const std::string& start) {
  std::vector<std::string> args = {"fetch", "-q", "--no-tags", "--depth=1", "--", url,
                                   "refs/heads/" + base + ":refs/paddock/base"};
  if (!start.empty()) args.push_back(start + ":refs/paddock/start");
  auto fetched = git.runRemote(args);
  if (fetched) return Ok{};
  if (start.empty()) return fetched.error();
  if (auto s = git.runRemote({"fetch", "-q", "--no-tags", "--", url, "refs/heads/" + base + ":refs/paddock/base"}); !s) {
    return s.error();
  }
  if (auto s = git.run({"update-ref", "refs/paddock/start", start}); !s) {
    return Error::local("Git", "the remote does not have commit " + start + ", the one the agent started from");
  }
  return Ok{};
}

// One path the three-way merge left unmerged: mode and blob per stage (1 the start, 2 the new
// base, 3 the agent's work).
struct Unmerged {
  std::string mode[4];
  std::string blob[4];
};

// The agent's and the new base's versions of one file, merged line by line (git merge-file); the
// merged blob's mode and id, or "" when they conflict (or are not both regular files).
Result<std::pair<std::string, std::string>> mergeOneFile(const Git& git, const Unmerged& u, const std::string& scratch) {
  auto regular = [](const std::string& m) { return m == "100644" || m == "100755"; };
  if (!regular(u.mode[1]) || !regular(u.mode[2]) || !regular(u.mode[3])) return std::pair<std::string, std::string>{};
  std::string mode = u.mode[2] == u.mode[1] ? u.mode[3] : u.mode[2];
  if (u.mode[2] != u.mode[1] && u.mode[3] != u.mode[1] && u.mode[2] != u.mode[3]) return std::pair<std::string, std::string>{};
  std::string files[4];
  for (int i = 1; i <= 3; ++i) {
    auto text = git.run({"cat-file", "blob", u.blob[i]});
    if (!text) return text.error();
    files[i] = scratch + "/merge-" + std::to_string(i);
    std::ofstream(files[i], std::ios::binary | std::ios::trunc) << *text;
  }
  auto merged = git.output({"merge-file", "-p", "-q", "--", files[2], files[1], files[3]});
  if (!merged) return merged.error();
  if (merged->exit_code != 0) return std::pair<std::string, std::string>{};
  auto blob = git.run({"hash-object", "-w", "--stdin"}, merged->out);
  if (!blob) return blob.error();
  return std::pair<std::string, std::string>{mode, trimmed(*blob)};
}

// The agent's change (from refs/paddock/start to the tree `work`) merged onto refs/paddock/base
// in the stage's index, a three-way merge with the start as its merge base: a path only one side
// changed takes that side; a file both changed is merged line by line. The paths that conflict;
// none: the index holds the merged tree.
Result<std::vector<std::string>> mergeOntoBase(const Git& git, const std::string& work, const std::string& scratch) {
  if (auto s = git.run({"read-tree", "--empty"}); !s) return s.error();
  if (auto s = git.run({"read-tree", "-m", "-i", "--aggressive", "refs/paddock/start", "refs/paddock/base", work}); !s) {
    return s.error();
  }
  auto listed = git.run({"ls-files", "-u", "-z"});
  if (!listed) return listed.error();
  std::map<std::string, Unmerged> unmerged;
  for (const auto& entry : splitNul(*listed)) {
    // "<mode> <blob> <stage>\t<path>"
    size_t tab = entry.find('\t'), sp1 = entry.find(' '), sp2 = entry.find(' ', sp1 + 1);
    if (tab == std::string::npos || sp2 == std::string::npos || sp2 + 2 != tab) continue;
    int stage = entry[sp2 + 1] - '0';
    if (stage < 1 || stage > 3) continue;
    Unmerged& u = unmerged[entry.substr(tab + 1)];
    u.mode[stage] = entry.substr(0, sp1);
    u.blob[stage] = entry.substr(sp1 + 1, sp2 - sp1 - 1);
  }
  std::vector<std::string> conflicts;
  for (const auto& [path, u] : unmerged) {
    auto merged = mergeOneFile(git, u, scratch);
    if (!merged) return merged.error();
    if (merged->first.empty()) {
      conflicts.push_back(path);
    } else if (auto s = git.run({"update-index", "--add", "--cacheinfo", merged->first + "," + merged->second + "," + path}); !s) {
      return s.error();
    }
  }
  return conflicts;
}

// Why the change is refused: its protected paths and credential-looking lines, the first of each.
std::string refusalMessage(const StageResult& r) {
  std::string message;
  if (!r.refused_paths.empty()) {
    message = "the change touches " + std::to_string(r.refused_paths.size()) +
              " protected path(s) of the policy (first: " + r.refused_paths.front() + ")";
  }
  if (!r.findings.empty()) {
    const auto& f = r.findings.front();
    message += std::string(message.empty() ? "the change" : "; it") + " adds " + std::to_string(r.findings.size()) +
               " line(s) that look like credentials (first: " + f.file + ":" + std::to_string(f.line) + ", " +
               f.pattern + ")";
  }
  return message + "; nothing was pushed. Remove them from the workspace or ask the policy's owners.";
}

// Opens the pull request through the forge's REST API, retrying a request that was not sent. An
// error with reason "Forge" is the configuration's fault.
Result<PullRequest> openPullRequest(const Forge& forge, const std::string& token, const PullRequestSpec& spec) {
  auto api = splitUrl(forge.api_url);
  if (!api) return Error::local("Forge", api.error().message);
  // Through the proxy the pod names (on the gateway path, paddock-gateway, which allows hosts by name).
  http::TlsOptions via;
  via.proxy = http::proxyFor(api->origin, [](const char* name) { return std::getenv(name); });
  auto client = http::makeClient(api->origin, via);
  if (!client) return Error::local("Forge", client.error().message);
  std::string prefix = api->target == "/" ? "" : api->target;
  auto request = pullRequestRequest(forge, prefix, token, spec);
  Result<http::Response> response = Error::local("NotSent", "");
  for (int attempt = 0; attempt < 3; ++attempt) {
    response = (*client)->send(request);
    if (response || response.error().reason != "NotSent") break;
    std::this_thread::sleep_for(std::chrono::seconds(1 << attempt));
  }
  if (!response) return response.error();
  return readPullRequestResponse(*response);
}

}  // namespace

std::string redact(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  for (size_t pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos)) {
    text.replace(pos, secret.size(), "[redacted]");
  }
  return text;
}

Outcome runClone(const CloneOptions& o) {
  StageResult r;
  r.stage = "clone";
  auto repo_text = readFile(o.repository_file);
  json repo = repo_text ? json::parse(*repo_text, nullptr, false) : json();
  std::string url = stringAt(repo, "/url");
  std::string base = stringAt(repo, "/baseBranch");
  if (url.empty() || base.empty()) {
    return finish(r, kUsage, "UsageError", "RepositoryFile",
                  o.repository_file + " must be JSON with the strings url and baseBranch");
  }
  std::string token;
  if (!o.token_file.empty()) {
    auto text = readFile(o.token_file);
    if (!text) return finish(r, kUsage, "UsageError", "TokenFile", text.error().message);
    token = trimmed(*text);
  }
  std::error_code ec;
  if (std::filesystem::exists(o.into, ec) && !std::filesystem::is_empty(o.into, ec)) {
    return finish(r, kFailed, "Failed", "WorkspaceNotEmpty",
                  o.into + " is not empty: the workspace is cloned once, before the agent starts");
  }
  std::filesystem::create_directories(o.into, ec);
  Git git(o.git, o.into + "/.git", o.into);
  git.setAuthorization(token.empty() ? "" : gitAuthorizationHeader(token));
  auto failed = [&](const Error& e, int code, std::string reason) {
    return finish(r, code, code == kForgeError ? "ForgeError" : "Failed", std::move(reason), redact(e.message, token));
  };
  if (auto s = git.run({"init", "-q", "-b", base}); !s) return failed(s.error(), kFailed, "Git");
  if (auto s = git.run({"remote", "add", "origin", url}); !s) return failed(s.error(), kFailed, "Git");
  if (auto s = git.runRemote({"fetch", "-q", "--no-tags", "--depth=1", "origin",
                              "refs/heads/" + base + ":refs/remotes/origin/" + base});
      !s) {
    return failed(s.error(), kForgeError, "FetchFailed");
  }
  if (auto s = git.run({"checkout", "-q", "-B", base, "refs/remotes/origin/" + base}); !s) {
    return failed(s.error(), kFailed, "Git");
  }
  auto head = git.run({"rev-parse", "HEAD"});
  if (head) r.base_commit = trimmed(*head);
  return finish(r, kSuccess, "Cloned", "Cloned", "cloned " + base + " at " + r.base_commit + " into " + o.into);
}

Outcome runPr(const PrOptions& o) {
  StageResult r;
  r.stage = "pr";
  r.branch = branchName(o.run);
  auto usage = [&](std::string reason, std::string message) {
    r.branch.clear();
    return finish(r, kUsage, "UsageError", std::move(reason), std::move(message));
  };
  if (o.run.run.empty()) return usage("NoRun", "the run's name is unknown: set --run or PADDOCK_RUN");

  // Inputs the operator mounted: the repository, the protected paths, the token, the canaries.
  auto repo_text = readFile(o.repository_file);
  if (!repo_text) return usage("RepositoryFile", repo_text.error().message);
  json repo = json::parse(*repo_text, nullptr, false);
  std::string url = stringAt(repo, "/url");
  std::string base = stringAt(repo, "/baseBranch");
  if (url.empty() || base.empty()) {
    return usage("RepositoryFile", o.repository_file + " must be JSON with the strings url and baseBranch");
  }
  std::vector<std::string> globs;
  if (!o.protected_paths_file.empty()) {
    auto text = readFile(o.protected_paths_file);
    if (!text) return usage("ProtectedPathsFile", text.error().message);
    globs = parseGlobList(*text);
  }
  std::string token;
  if (!o.token_file.empty()) {
    auto text = readFile(o.token_file);
    if (!text) return usage("TokenFile", text.error().message + " (the forge token, the policy's secret for stage pr)");
    token = trimmed(*text);
  }
  if (token.empty() && o.open_pull_request) return usage("TokenFile", "no forge token: set --token-file to its secret file");
  if (!o.base_commit.empty() && !controllers::isCommitId(o.base_commit)) {
    return usage("BaseCommit", "--base-commit must be a full commit id (40 or 64 lowercase hex digits), not \"" +
                                   o.base_commit.substr(0, 80) + "\"");
  }
  std::vector<std::string> canaries = parseCanaries(o.canaries);
  if (!o.canaries_file.empty()) {
    auto text = readFile(o.canaries_file);
    if (!text) return usage("CanariesFile", text.error().message);
    for (auto& c : parseCanaries(*text)) canaries.push_back(std::move(c));
  }
  Result<Forge> forge = Error::local("", "");
  if (o.open_pull_request) {
    forge = forgeFor(url, o.forge, o.forge_api_url, o.forge_repository);
    if (!forge) return usage("Forge", forge.error().message);
  }

  // The stage's own git directory, with the workspace as its work tree.
  std::string templ = (std::filesystem::path(o.scratch) / "paddock-stage-XXXXXX").string();
  if (!mkdtemp(templ.data())) return finish(r, kFailed, "Failed", "Scratch", "cannot create a directory in " + o.scratch);
  ScratchDir scratch{templ};
  std::string git_dir = templ + "/git";
  Git git(o.git, git_dir, o.workspace);
  git.setAuthorization(token.empty() ? "" : gitAuthorizationHeader(token));
  auto failed = [&](const Error& e, int code = kFailed, std::string reason = "Git") {
    std::string outcome = code == kForgeError ? "ForgeError" : "Failed";
    return finish(r, code, outcome, std::move(reason), redact(e.message, token));
  };
  if (auto s = Git(o.git, git_dir, "").run({"init", "-q", "--bare"}); !s) return failed(s.error());

  // The base branch as the remote has it now, not as the workspace says; and the commit the agent
  // started from, when the clone recorded it: the agent's change is its workspace against that.
  if (auto s = fetchBases(git, url, base, o.base_commit); !s) return failed(s.error(), kForgeError, "FetchFailed");
  auto base_sha = git.run({"rev-parse", "--verify", "refs/paddock/base^{commit}"});
  if (!base_sha) return failed(base_sha.error());
  r.base_commit = trimmed(*base_sha);
  r.start_commit = o.base_commit;
  const std::string start = o.base_commit.empty() ? "refs/paddock/base" : "refs/paddock/start";

  // The agent's work: every file of the work tree (as .gitignore leaves it), but the agent's
  // result folder .paddock/.
  if (auto s = git.run({"read-tree", start}); !s) return failed(s.error());
  if (auto s = git.run({"add", "-A", "--", ".", ":(exclude).paddock"}); !s) return failed(s.error());
  auto names = git.run({"diff", "--cached", "--name-only", "--no-renames", "-z", start});
  if (!names) return failed(names.error());
  std::vector<std::string> changed = splitNul(*names);
  if (changed.empty()) {
    std::string from = o.base_commit.empty() ? base + " at " + r.base_commit : "the commit it started from, " + o.base_commit;
    return finish(r, kNoChanges, "NoChanges", "NoChanges", "the workspace does not differ from " + from + "; nothing to propose");
  }
  r.refused_paths = protectedPaths(changed, globs);

  // The base moved since the agent started: its change goes onto the base as it is now.
  if (!o.base_commit.empty() && o.base_commit != r.base_commit) {
    auto work = git.run({"write-tree"});
    if (!work) return failed(work.error());
    auto conflicts = mergeOntoBase(git, trimmed(*work), templ);
    if (!conflicts) return failed(conflicts.error());
    if (!conflicts->empty() && r.refused_paths.empty()) {
      r.conflicts = *conflicts;
      r.branch.clear();
      return finish(r, kConflict, "Conflict", "BaseMoved",
                    base + " moved from " + o.base_commit + " to " + r.base_commit + " and both changed " +
                        std::to_string(conflicts->size()) + " file(s) the agent changed (first: " + conflicts->front() +
                        "); nothing was pushed. Run the task again on the new base.");
    }
  }

  // The summary: the agent's result file (never through a symbolic link), else the task.
  std::string summary;
  if (auto s = readBelow(o.workspace, o.summary_file, 16 * 1024); s) {
    summary = *s;
  } else if (!o.task_file.empty()) {
    if (auto t = readFile(o.task_file); t) summary = t->substr(0, 16 * 1024);
  }

  // The CHANGELOG entry, written into the index only (the workspace is not touched).
  std::string changelog;
  if (auto ls = git.run({"ls-files", "-s", "--", "CHANGELOG.md"}); ls && ls->starts_with("100")) {
    if (auto c = git.run({"cat-file", "blob", ":CHANGELOG.md"}); c) changelog = *c;
  }
  std::string updated =
      insertChangelogEntry(changelog, renderChangelogEntry(o.run, summary, o.date.empty() ? today() : o.date));
  auto blob = git.run({"hash-object", "-w", "--stdin"}, updated);
  if (!blob) return failed(blob.error());
  if (auto s = git.run({"update-index", "--add", "--cacheinfo", "100644," + trimmed(*blob) + ",CHANGELOG.md"}); !s) {
    return failed(s.error());
  }

  // Credentials in anything the change adds, the CHANGELOG entry (the summary) included.
  auto diff = git.run({"diff", "--cached", "-U0", "--no-color", "--no-ext-diff", "--no-textconv", "--no-renames",
                       "--text", "--src-prefix=a/", "--dst-prefix=b/", "refs/paddock/base"});
  if (!diff) return failed(diff.error());
  r.findings = findCredentials(addedLines(*diff), canaries);

  if (!r.refused_paths.empty() || !r.findings.empty()) {
    r.branch.clear();
    return finish(r, kRefused, "Refused", r.refused_paths.empty() ? "Credential" : "ProtectedPath", refusalMessage(r));
  }

  // One commit on the base, by paddock, pushed to a branch that must not exist yet.
  std::string title = titleOf(summary, "Changes by Paddock run " + o.run.run);
  auto tree = git.run({"write-tree"});
  if (!tree) return failed(tree.error());
  std::string message = title + "\n\n" + (summary.empty() ? "" : trimmed(summary) + "\n\n") +
                        "Paddock-Run: " + o.run.ns + "/" + o.run.run + "\n";
  auto commit = git.run({"commit-tree", trimmed(*tree), "-p", r.base_commit, "-F", "-"}, message);
  if (!commit) return failed(commit.error());
  r.commit = trimmed(*commit);
  // Fresh means fresh: a branch left by an earlier attempt is not reused (and the lease below
  // keeps a concurrent push from being overwritten).
  auto existing = git.runRemote({"ls-remote", "--heads", "--", url, "refs/heads/" + r.branch});
  if (!existing) return failed(existing.error(), kForgeError, "PushFailed");
  if (!trimmed(*existing).empty()) {
    return finish(r, kForgeError, "ForgeError", "BranchExists",
                  "the remote already has " + r.branch + " (an earlier attempt?); delete it to run this stage again");
  }
  if (auto s = git.runRemote({"push", "-q", "--force-with-lease=refs/heads/" + r.branch + ":", "--", url,
                              r.commit + ":refs/heads/" + r.branch});
      !s) {
    return failed(s.error(), kForgeError, "PushFailed");
  }
  log::info("pushed the branch", {{"branch", r.branch}, {"commit", r.commit}, {"files", changed.size()}});
  if (!o.open_pull_request) {
    return finish(r, kSuccess, "Pushed", "Pushed", "pushed " + r.branch + "; no pull request was asked for");
  }

  // The pull request, through the forge's REST API. Never merged.
  std::string body = renderPullRequestBody(o.run, summary, changed.size());
  if (!o.partial.empty()) {
    body = "> **Partial work, opened as a draft.** Paddock stopped the agent before it finished its task: " + o.partial +
           ". This is what it had done by then; review it as unfinished.\n\n" + body;
  }
  auto pr = openPullRequest(*forge, token, {title, r.branch, base, body, !o.partial.empty()});
  if (!pr) {
    if (pr.error().reason == "Forge") return usage("Forge", pr.error().message);
    return failed(pr.error(), kForgeError, "PullRequestFailed");
  }
  r.pull_request_url = pr->url;
  r.pull_request_number = pr->number;
  return finish(r, kSuccess, "PullRequestOpened", "PullRequestOpened",
                std::string(o.partial.empty() ? "opened pull request #" : "opened draft pull request #") +
                    std::to_string(pr->number) + " from " + r.branch + " into " + base);
}

namespace {

// The deploy endpoint and its token, read for `r.stage`; a usage error names what is missing.
struct Endpoint {
  UrlParts url;
  std::string token;
};
Result<Endpoint> readEndpoint(const DeployOptions& o) {
  auto usage = [](std::string reason, std::string message) { return Error::local(std::move(reason), std::move(message)); };
  if (o.run.run.empty()) return usage("NoRun", "the run's name is unknown: set --run or PADDOCK_RUN");
  std::string url = o.deploy_url;
  if (url.empty() && !o.deploy_url_file.empty()) {
    auto text = readFile(o.deploy_url_file);
    if (!text) return usage("DeployUrlFile", text.error().message);
    url = trimmed(*text);
  }
  if (url.empty()) {
    return usage("DeployUrl", "no deploy endpoint: set --deploy-url (the policy's spec.stages[].endpoint.url)");
  }
  auto parts = splitUrl(url);
  if (!parts) return usage("DeployUrl", parts.error().message);
  if (o.token_file.empty()) return usage("TokenFile", "no deploy token: set --token-file to its secret file");
  auto token_text = readFile(o.token_file);
  if (!token_text) {
    return usage("TokenFile", token_text.error().message + " (the deploy token, the policy's secret for this stage)");
  }
  std::string token = trimmed(*token_text);
  if (token.empty()) return usage("TokenFile", o.token_file + " is empty");
  return Endpoint{*parts, token};
}

// Sends `body` to the endpoint; the release it answers with goes into the result. Success is a
// 2xx answer.
Outcome callEndpoint(StageResult r, const Endpoint& e, const json& body, const std::string& done) {
  // Through the proxy the pod names (on the gateway path, paddock-gateway, which allows hosts by name).
  http::TlsOptions via;
  via.proxy = http::proxyFor(e.url.origin, [](const char* name) { return std::getenv(name); });
  auto client = http::makeClient(e.url.origin, via);
  if (!client) return finish(r, kUsage, "UsageError", "DeployUrl", client.error().message);
  auto response = (*client)->send(endpointRequest(e.url.target, e.token, body));
  if (!response) {
    return finish(r, kDeployError, "DeployError", "Unreachable", redact(response.error().describe(), e.token));
  }
  r.extra["status"] = response->status;
  json answer = json::parse(response->body, nullptr, false);
  if (answer.is_object()) {
    json release = json::object();
    for (const char* key : {"id", "name", "url", "status", "environment"}) {
      if (answer.contains(key) && (answer[key].is_string() || answer[key].is_number())) release[key] = answer[key];
    }
    if (!release.empty()) r.extra["release"] = release;
  }
  if (response->status < 200 || response->status >= 300) {
    std::string said = answer.is_object() ? stringAt(answer, "/message") : response->body.substr(0, 200);
    return finish(r, kDeployError, "DeployError", "DeployRefused",
                  redact("the deploy endpoint answered " + std::to_string(response->status) + (said.empty() ? "" : ": " + said),
                         e.token));
  }
  std::string outcome = r.stage == "promote" ? "Promoted" : "Staged";
  return finish(r, kSuccess, outcome, outcome, done);
}

}  // namespace

Outcome runDeploy(const DeployOptions& o) {
  StageResult r;
  r.stage = "deploy";
  r.branch = o.ref.empty() ? branchName(o.run) : o.ref;
  if (!o.commit.empty()) r.commit = o.commit;
  auto endpoint = readEndpoint(o);
  if (!endpoint) return finish(r, kUsage, "UsageError", endpoint.error().reason, endpoint.error().message);
  json body = {{"run", o.run.run}, {"namespace", o.run.ns}, {"stage", "deploy"}, {"ref", r.branch}, {"branch", r.branch}};
  if (!o.commit.empty()) body["commit"] = o.commit;
  return callEndpoint(r, *endpoint, body, "staged a release of " + r.branch + " (promotion is its own gated stage)");
}

Outcome runPromote(const DeployOptions& o) {
  StageResult r;
  r.stage = "promote";
  if (!controllers::isReleaseId(o.release)) {
    return finish(r, kUsage, "UsageError", "Release",
                  "--release must be the staged release's id (1 to 128 of A-Z a-z 0-9 . _ : -), as the deploy stage "
                  "reported it; got \"" + o.release.substr(0, 80) + "\"");
  }
  auto endpoint = readEndpoint(o);
  if (!endpoint) return finish(r, kUsage, "UsageError", endpoint.error().reason, endpoint.error().message);
  json body = {{"run", o.run.run}, {"namespace", o.run.ns}, {"stage", "promote"}, {"release", o.release}};
  return callEndpoint(r, *endpoint, body, "promoted release " + o.release);
}

}  // namespace paddock::stage
