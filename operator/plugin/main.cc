// kubectl-paddock: the kubectl plugin for Paddock (`kubectl paddock ...`). It acts as the user:
// their kubeconfig, their client certificate or token, never the operator's service account.
#include <limits.h>
#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "operator/common/log.h"
#include "operator/common/timestamp.h"
#include "operator/common/version.h"
#include "operator/kube/client.h"
#include "operator/kube/config.h"
#include "operator/plugin/cli.h"
#include "operator/plugin/output.h"
#include "operator/plugin/status.h"

namespace {

using namespace paddock;
using namespace paddock::plugin;
using nlohmann::json;
namespace fs = std::filesystem;

const kube::Resource kSelfSubjectReviews{"authentication.k8s.io", "v1", "selfsubjectreviews", false};

int fail(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return 1;
}

// The user's kubeconfig, as kubectl finds it: --kubeconfig, else $KUBECONFIG, else ~/.kube/config.
// Never the pod's service account, even inside a pod.
Result<kube::ClusterConfig> userConfig(const Invocation& inv) {
  std::vector<std::string> paths;
  if (!inv.kubeconfig.empty()) {
    std::error_code ec;
    if (!fs::exists(inv.kubeconfig, ec)) return Error::local("InvalidConfig", "--kubeconfig " + inv.kubeconfig + " does not exist");
    paths.push_back(inv.kubeconfig);
  } else if (const char* env = std::getenv("KUBECONFIG"); env && *env) {
    std::stringstream ss(env);
    for (std::string p; std::getline(ss, p, ':');) paths.push_back(p);
  } else {
    const char* home = std::getenv("HOME");
    paths.push_back(std::string(home ? home : "") + "/.kube/config");
  }
  return kube::loadKubeconfig(paths, inv.context);
}

// The API server's words for an error, with a hint for the usual causes.
std::string explain(const Error& e, const std::string& what) {
  std::string out = what + ": " + e.describe();
  if (e.code == 401) out += "\nhint: your kubeconfig's credentials were not accepted (expired certificate or token?)";
  if (e.reason == "Transport" || e.reason == "NotSent" || e.reason == "Timeout") {
    out += "\nhint: is the API server in your kubeconfig reachable?";
  }
  return out;
}

// Who the API server says the user is.
struct Identity {
  std::string username;
  std::vector<std::string> groups;
};

Result<Identity> whoAmI(kube::Client& client) {
  json review = {{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "SelfSubjectReview"}};
  auto r = client.create(kSelfSubjectReviews, "", review);
  if (!r) return r.error();
  Identity id;
  id.username = r->value(json::json_pointer("/status/userInfo/username"), std::string());
  for (const auto& g : r->value(json::json_pointer("/status/userInfo/groups"), json::array())) {
    if (g.is_string()) id.groups.push_back(g.get<std::string>());
  }
  if (id.username.empty()) return Error::local("InvalidResponse", "the SelfSubjectReview named no user");
  return id;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out.empty() ? "none" : out;
}

int decide(kube::Client& client, const Invocation& inv) {
  const std::string key = inv.ns + "/" + inv.run;
  // The run and its stages, when the user may read them; the API server has the last word.
  if (auto run = client.get(kube::resources::agentruns, inv.ns, inv.run); run) {
    std::vector<std::string> stages;
    for (const auto& s : run->value(json::json_pointer("/spec/stages"), json::array())) stages.push_back(s.get<std::string>());
    if (std::find(stages.begin(), stages.end(), inv.stage) == stages.end()) {
      return fail("AgentRun " + key + " has no gated stage \"" + inv.stage + "\" (its spec.stages: " + joined(stages) + ")");
    }
  } else if (run.error().code == 404) {
    return fail("AgentRun " + key + " not found; check the name and -n/--namespace");
  }
  auto id = whoAmI(client);
  if (!id) return fail(explain(id.error(), "cannot find out who you are (SelfSubjectReview)"));
  std::string decision = inv.command == "approve" ? "Approve" : "Reject";
  std::string name = approvalName(inv.run, inv.stage, id->username, randomSuffix());
  auto created = client.create(kube::resources::agentapprovals, inv.ns,
                               approvalObject(name, inv.run, inv.stage, decision, id->username, id->groups, inv.message));
  if (!created) {
    const Error& e = created.error();
    std::string out = explain(e, "the API server refused the AgentApproval for " + key + " stage " + inv.stage + " as " + id->username);
    if (e.code == 403 && e.message.find("cannot create resource") != std::string::npos) {
      out += "\nhint: " + id->username + " needs a Role granting create on agentapprovals.paddock.dev in namespace " + inv.ns;
    }
    return fail(out);
  }
  std::printf("AgentApproval %s/%s created: %s (groups: %s) %s stage %s of run %s.\n", inv.ns.c_str(), name.c_str(),
              id->username.c_str(), joined(id->groups).c_str(), inv.command == "approve" ? "approves" : "rejects",
              inv.stage.c_str(), inv.run.c_str());
  std::printf("The operator counts it when %s holds the approve verb on agentruns, is not the run's requester and is "
              "among the stage's approvers; its verdict appears under Approvals in:\n  kubectl paddock status %s -n %s\n",
              id->username.c_str(), inv.run.c_str(), inv.ns.c_str());
  return 0;
}

int cancel(kube::Client& client, const Invocation& inv) {
  const std::string key = inv.ns + "/" + inv.run;
  auto patched = client.mergePatch(kube::resources::agentruns, inv.ns, inv.run, {{"spec", {{"cancel", true}}}});
  if (!patched) {
    if (patched.error().code == 404) return fail("AgentRun " + key + " not found; check the name and -n/--namespace");
    return fail(explain(patched.error(), "cannot cancel AgentRun " + key));
  }
  std::string phase = patched->value(json::json_pointer("/status/phase"), std::string());
  std::printf("AgentRun %s: cancel requested (spec.cancel: true)%s.\nFollow it: kubectl paddock status %s -n %s\n", key.c_str(),
              phase.empty() ? "" : ("; its phase was " + phase).c_str(), inv.run.c_str(), inv.ns.c_str());
  return 0;
}

// An object as -o asks: json (one line) or yaml.
int print(const Invocation& inv, const json& object) {
  std::fputs(inv.output == "yaml" ? toYaml(object).c_str() : (object.dump() + "\n").c_str(), stdout);
  std::fflush(stdout);
  return 0;
}

int list(kube::Client& client, const Invocation& inv) {
  const std::string ns = inv.all_namespaces ? "" : inv.ns;
  std::string target = kube::resources::agentruns.path(ns);
  http::Request request{http::Method::Get, target, {}, "", std::chrono::seconds(30)};
  // The API server renders the CRD's printer columns when asked for a Table.
  if (inv.output.empty()) request.headers.emplace_back("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io");
  auto response = client.rest().send(request);
  if (!response || response->status < 200 || response->status >= 300) {
    Error e = response ? kube::errorFromResponse(*response) : response.error();
    return fail(explain(e, "cannot list AgentRuns" + (ns.empty() ? std::string(" in any namespace") : " in " + ns)));
  }
  auto body = json::parse(response->body, nullptr, false);
  if (!body.is_object()) return fail("the API server's answer to the AgentRun list is not JSON");
  if (!inv.output.empty()) return print(inv, body);
  std::fputs(renderTable(body, inv.all_namespaces).c_str(), stdout);
  return 0;
}

// Prints the run's phase line (or object, with -o) whenever it changes, until the run ends.
int watch(kube::Client& client, const Invocation& inv) {
  const std::string key = inv.ns + "/" + inv.run;
  std::string last;
  auto show = [&](const json& run) {
    std::string line = phaseLine(run);
    if (line == last) return;
    last = line;
    if (!inv.output.empty()) {
      if (inv.output == "yaml") std::fputs("---\n", stdout);
      print(inv, run);
      return;
    }
    std::printf("%s  %s\n", formatMicroTime(std::chrono::system_clock::now()).substr(11, 8).c_str(), line.c_str());
    std::fflush(stdout);
  };
  for (;;) {
    auto run = client.get(kube::resources::agentruns, inv.ns, inv.run);
    if (!run) {
      if (run.error().code == 404) return fail("AgentRun " + key + " not found; check the name and -n/--namespace");
      return fail(explain(run.error(), "cannot read AgentRun " + key));
    }
    show(*run);
    int code = 0;
    if (finished(*run, code)) return code;
    std::string target = kube::resources::agentruns.path(inv.ns) + "?watch=1&allowWatchBookmarks=true&fieldSelector=" +
                         kube::urlEncode("metadata.name=" + inv.run) + "&resourceVersion=" +
                         run->value(json::json_pointer("/metadata/resourceVersion"), std::string()) +
                         "&timeoutSeconds=300";
    std::optional<int> exit_code;
    auto streamed = client.stream(kube::resources::agentruns, http::Request{http::Method::Get, target, {}, "", std::chrono::seconds(330)},
                                  [&](std::string_view line) {
                                    auto event = json::parse(line, nullptr, false);
                                    if (!event.is_object()) return true;
                                    std::string type = event.value("type", "");
                                    if (type == "DELETED") {
                                      exit_code = fail("AgentRun " + key + " was deleted");
                                      return false;
                                    }
                                    if (type != "ADDED" && type != "MODIFIED") return type != "ERROR";
                                    show(event["object"]);
                                    int c = 0;
                                    if (finished(event["object"], c)) exit_code = c;
                                    return !exit_code;
                                  });
    if (exit_code) return *exit_code;
    if (!streamed && !kube::isTransient(streamed.error())) return fail(explain(streamed.error(), "cannot watch AgentRun " + key));
  }
}

// The completion scripts' callback: candidates for the last word, run names from the API server.
int completeWords(const Invocation& inv) {
  Completion c = complete(inv.complete_args);
  const std::string prefix = inv.complete_args.empty() ? "" : inv.complete_args.back();
  if (c.wants_runs) {
    Invocation where = inv;
    if (!c.ns.empty()) where.ns = c.ns;
    if (auto config = userConfig(where)) {
      if (where.ns.empty()) where.ns = config->default_namespace;
      if (auto rest = kube::RestClient::create(*config, std::string("kubectl-paddock/") + version())) {
        kube::Client client(**rest, {.qps = 0, .max_retries = 0, .timeout = std::chrono::seconds(5)});
        if (auto runs = client.list(kube::resources::agentruns, where.ns)) {
          for (const auto& r : runs->items) c.candidates.push_back(r.value(json::json_pointer("/metadata/name"), std::string()));
        }
      }
    }
  }
  std::fputs(completionOutput(c.candidates, prefix).c_str(), stdout);
  return 0;
}

int status(kube::Client& client, const Invocation& inv) {
  const std::string key = inv.ns + "/" + inv.run;
  auto run = client.get(kube::resources::agentruns, inv.ns, inv.run);
  if (!run) {
    if (run.error().code == 404) return fail("AgentRun " + key + " not found; check the name and -n/--namespace");
    return fail(explain(run.error(), "cannot read AgentRun " + key));
  }
  kube::ListOptions options;
  options.field_selector = "regarding.name=" + inv.run;
  auto listed = client.list(kube::resources::events, inv.ns, options);
  std::vector<json> events = listed ? eventsAbout(*run, std::move(listed->items)) : std::vector<json>{};
  if (!inv.output.empty()) {
    if (!listed) return fail(explain(listed.error(), "cannot list the Events of AgentRun " + key));
    return print(inv, {{"run", *run}, {"events", events}});
  }
  std::fputs(renderStatus(*run, std::move(events), std::chrono::system_clock::now()).c_str(), stdout);
  if (!listed) std::printf("  (cannot list Events: %s)\n", listed.error().describe().c_str());
  return 0;
}

int logs(kube::Client& client, const Invocation& inv) {
  std::string stage = inv.stage.empty() ? "agent" : inv.stage;
  std::string pod = inv.run + "-" + stage;
  // The pod status names, when there is one.
  if (auto run = client.get(kube::resources::agentruns, inv.ns, inv.run); run) {
    for (const auto& s : run->value(json::json_pointer("/status/stages"), json::array())) {
      if (s.value("name", "") == stage && s.contains("pod") && s["pod"].is_string()) pod = s["pod"].get<std::string>();
    }
  }
  const std::string key = inv.ns + "/" + pod;
  auto object = client.get(kube::resources::pods, inv.ns, pod);
  if (!object) {
    if (object.error().code == 404) {
      return fail("pod " + key + " not found: stage " + stage + " of run " + inv.run +
                  " has not started yet, or its pod is gone (see kubectl paddock status " + inv.run + ")");
    }
    return fail(explain(object.error(), "cannot read pod " + key));
  }
  std::string container = object->value(json::json_pointer("/spec/containers/0/name"), std::string());
  std::string target = kube::resources::pods.path(inv.ns, pod, "log");
  if (!container.empty()) target += "?container=" + kube::urlEncode(container);
  auto response = client.rest().send(http::Request{http::Method::Get, target, {}, "", std::chrono::seconds(30)});
  if (response && response->status >= 200 && response->status < 300) {
    std::fputs(response->body.c_str(), stdout);
    return 0;
  }
  Error e = response ? kube::errorFromResponse(*response) : response.error();
  return fail(explain(e, "cannot read the logs of pod " + key) +
              "\nhint: the API server fetches logs from the kubelet of the pod's node; a pod that has not started, "
              "or one on a simulated (kwok) node, has none");
}

// paddock-audit next to this program (the build tree, or an install's bin/), else on PATH.
std::string auditProgram() {
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = '\0';
    fs::path beside = fs::path(self).parent_path() / "paddock-audit";
    if (::access(beside.c_str(), X_OK) == 0) return beside.string();
  }
  return "paddock-audit";
}

int audit(const Invocation& inv) {
  std::string store = inv.store;
  if (store.empty()) {
    if (const char* env = std::getenv("PADDOCK_AUDIT_STORE")) store = env;
  }
  if (store.empty()) return fail("no audit store: pass --store DIR|URI or set PADDOCK_AUDIT_STORE");
  std::string program = auditProgram();
  std::string run = inv.ns + "/" + inv.run;
  std::vector<char*> argv = {program.data(), const_cast<char*>("show"), const_cast<char*>("--run"), run.data()};
  if (inv.command == "transcript") argv.push_back(const_cast<char*>("--transcript"));
  argv.push_back(store.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  ::execvp(program.c_str(), argv.data());
  return fail("cannot run " + program + " (" + std::strerror(errno) +
              "): install paddock-audit next to kubectl-paddock or on your PATH");
}

}  // namespace

int main(int argc, char** argv) {
  paddock::log::setLevel(paddock::log::Level::Error);  // messages for a person, not JSON lines
  Invocation inv = parseArgs(std::vector<std::string>(argv + 1, argv + argc));
  if (inv.help) {
    std::fputs(inv.text.c_str(), stdout);
    return 0;
  }
  if (!inv.error.empty()) {
    std::fprintf(stderr, "%s\n", inv.error.c_str());
    return 2;
  }
  if (inv.command == "__complete") return completeWords(inv);
  if (inv.command == "completion") {
    std::fputs(completionScript(inv.shell).c_str(), stdout);
    return 0;
  }
  const bool reads_store = inv.command == "audit" || inv.command == "transcript";
  if (reads_store && !inv.ns.empty()) return audit(inv);
  auto config = userConfig(inv);
  if (!config) return fail(config.error().message);
  if (inv.ns.empty()) inv.ns = config->default_namespace;
  if (reads_store) return audit(inv);
  auto rest = kube::RestClient::create(*config, std::string("kubectl-paddock/") + version());
  if (!rest) return fail(rest.error().describe());
  kube::Client client(**rest, {.qps = 0, .max_retries = 2});
  if (inv.command == "approve" || inv.command == "reject") return decide(client, inv);
  if (inv.command == "cancel") return cancel(client, inv);
  if (inv.command == "status") return status(client, inv);
  if (inv.command == "logs") return logs(client, inv);
  if (inv.command == "list") return list(client, inv);
  if (inv.command == "watch") return watch(client, inv);
  return fail("unknown command " + inv.command);
}
