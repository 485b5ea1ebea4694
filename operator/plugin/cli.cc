#include "operator/plugin/cli.h"

#include <algorithm>
#include <random>
#include <set>

#include "operator/common/flags.h"
#include "operator/common/version.h"

namespace paddock::plugin {
namespace {

struct Command {
  const char* name;
  const char* synopsis;  // after "kubectl paddock NAME"
  const char* summary;
};

constexpr Command kCommands[] = {
    {"approve", "RUN --stage STAGE [-m COMMENT]", "Approve a gated stage of RUN, as yourself."},
    {"reject", "RUN --stage STAGE [-m COMMENT]", "Reject a gated stage of RUN, as yourself; one counted reject fails the run."},
    {"cancel", "RUN", "Cancel RUN (sets spec.cancel: true); its pod is stopped and the phase becomes Cancelled."},
    {"status", "RUN", "Show RUN: phase, usage against its budget, stages and their approvals, conditions, latest Events."},
    {"logs", "RUN [--stage STAGE]", "Print the logs of RUN's agent pod, or of a gated stage's pod."},
    {"audit", "RUN [--store DIR|URI]", "Tell RUN's story from the audit store (runs paddock-audit show)."},
    {"transcript", "RUN [--store DIR|URI]",
     "Print RUN's conversation with the model, as paddock-gateway recorded it (runs paddock-audit show --transcript)."},
    {"list", "[-A]", "List AgentRuns with their printer columns (phase, stage, usage, age); -A in every namespace."},
    {"watch", "RUN", "Print RUN's phase each time it changes until it ends; exit 0 if it Succeeded, 3 if not."},
    {"completion", "bash|zsh|kubectl",
     "Print a completion script: for bash or zsh, or `kubectl_complete-paddock` for kubectl's own completion."},
};

const char* kGlobalHelp =
    "Global flags, before or after the command:\n"
    "  --kubeconfig FILE   kubeconfig to use (default $KUBECONFIG, else ~/.kube/config)\n"
    "  --context NAME      kubeconfig context (default its current-context)\n"
    "  -n, --namespace NS  the run's namespace (default the context's namespace)\n"
    "  -o, --output FMT    json or yaml instead of text (status, list, watch)\n"
    "  -h, --help          help for the plugin or a command\n"
    "      --version       the plugin's version and the commit it was built from\n"
    "\n"
    "Exit codes: 0 done; 1 the API server or the store refused or failed (the message says why);\n"
    "2 the command line is wrong; 3 watch: the run ended other than Succeeded.\n";

// Flags that take a value, so that the value is not mistaken for the command.
const std::set<std::string> kValueFlags = {"--kubeconfig", "--context", "--namespace", "--stage",
                                           "--message",    "--store",   "--output"};

const Command* findCommand(const std::string& name) {
  for (const auto& c : kCommands) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

// -n X, -n=X, -nX and the same for -m, as their long forms.
std::vector<std::string> expandShortFlags(const std::vector<std::string>& in) {
  std::vector<std::string> out;
  for (size_t i = 0; i < in.size(); ++i) {
    const std::string& a = in[i];
    if (a == "--") {
      out.insert(out.end(), in.begin() + static_cast<std::ptrdiff_t>(i), in.end());
      break;
    }
    if (a == "-A") {
      out.push_back("--all-namespaces");
      continue;
    }
    bool is_short = a.size() >= 2 && a[0] == '-' && (a[1] == 'n' || a[1] == 'm' || a[1] == 'o');
    if (!is_short) {
      out.push_back(a);
      continue;
    }
    std::string name = a[1] == 'n' ? "--namespace" : a[1] == 'm' ? "--message" : "--output";
    if (a.size() == 2) out.push_back(name);
    else out.push_back(name + "=" + a.substr(a[2] == '=' ? 3 : 2));
  }
  return out;
}

}  // namespace

std::string usage() {
  std::string out =
      "kubectl paddock: approve, reject, cancel and inspect Paddock AgentRuns as yourself (your kubeconfig, "
      "your identity).\n\nCommands:\n";
  for (const auto& c : kCommands) {
    std::string head = std::string("  ") + c.name + " " + c.synopsis;
    out += head + std::string(head.size() < 42 ? 42 - head.size() : 1, ' ') + c.summary + "\n";
  }
  return out + "\n" + kGlobalHelp + "\nRun 'kubectl paddock COMMAND --help' for a command's flags.\n";
}

Invocation parseArgs(const std::vector<std::string>& raw) {
  // The completion scripts' callback: global flags may come first, then the words typed so far.
  if (auto at = std::find(raw.begin(), raw.end(), "__complete"); at != raw.end()) {
    Invocation inv;
    inv.command = "__complete";
    inv.complete_args.assign(at + 1, raw.end());
    std::vector<std::string> globals = expandShortFlags(std::vector<std::string>(raw.begin(), at));
    for (size_t i = 0; i < globals.size(); ++i) {
      std::string name = globals[i], value;
      if (auto eq = name.find('='); eq != std::string::npos) value = name.substr(eq + 1), name = name.substr(0, eq);
      else if (i + 1 < globals.size()) value = globals[i + 1], ++i;
      if (name == "--kubeconfig") inv.kubeconfig = value;
      else if (name == "--context") inv.context = value;
      else if (name == "--namespace") inv.ns = value;
    }
    return inv;
  }
  Invocation inv;
  std::vector<std::string> args = expandShortFlags(raw);
  // The command is the first argument that is neither a flag nor a flag's value.
  size_t at = args.size();
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") break;
    if (a.rfind("-", 0) == 0) {
      if (kValueFlags.count(a)) ++i;
      continue;
    }
    at = i;
    break;
  }
  if (at == args.size() && std::find(args.begin(), args.end(), "--version") != args.end()) {
    inv.help = true;
    inv.text = versionLine("kubectl-paddock") + "\n";
    return inv;
  }
  if (at == args.size()) {
    bool asked = args.empty() || std::any_of(args.begin(), args.end(), [](const std::string& a) {
      return a == "--help" || a == "-h";
    });
    if (asked) {
      inv.help = true;
      inv.text = usage();
    } else {
      inv.error = "no command given\n\n" + usage();
    }
    return inv;
  }
  const Command* command = findCommand(args[at]);
  if (!command) {
    inv.error = "unknown command \"" + args[at] + "\"\n\n" + usage();
    return inv;
  }
  inv.command = command->name;
  const std::string program = std::string("kubectl paddock ") + command->name;
  Flags flags(program, command->summary);
  flags.add("kubeconfig", &inv.kubeconfig, "kubeconfig file (default $KUBECONFIG, else ~/.kube/config)");
  flags.add("context", &inv.context, "kubeconfig context (default its current-context)");
  flags.add("namespace", &inv.ns, "the run's namespace, also -n (default the context's namespace)");
  bool decides = inv.command == "approve" || inv.command == "reject";
  if (decides) {
    flags.add("stage", &inv.stage, "the gated stage decided on, e.g. pr (required)");
    flags.add("message", &inv.message, "a comment kept with the decision and in the audit log, also -m");
  } else if (inv.command == "logs") {
    flags.add("stage", &inv.stage, "a gated stage's pod instead of the agent's, e.g. pr");
  } else if (inv.command == "audit" || inv.command == "transcript") {
    flags.add("store", &inv.store, "the audit store: a segment directory or a mongodb:// URI (default $PADDOCK_AUDIT_STORE)");
  } else if (inv.command == "list") {
    flags.add("all-namespaces", &inv.all_namespaces, "runs of every namespace, also -A");
  }
  bool reads = inv.command == "status" || inv.command == "list" || inv.command == "watch";
  if (reads) flags.add("output", &inv.output, "json or yaml instead of text, also -o");
  flags.setEpilog(std::string("Usage: ") + program + " " + command->synopsis);

  std::vector<std::string> rest(args.begin(), args.begin() + static_cast<std::ptrdiff_t>(at));
  rest.insert(rest.end(), args.begin() + static_cast<std::ptrdiff_t>(at) + 1, args.end());
  std::vector<char*> argv{const_cast<char*>(program.c_str())};
  for (auto& a : rest) argv.push_back(a.data());
  std::vector<std::string> positional;
  std::string error;
  switch (flags.parse(static_cast<int>(argv.size()), argv.data(), error, &positional)) {
    case Flags::Outcome::Help:
      inv.help = true;
      inv.text = flags.usage();
      return inv;
    case Flags::Outcome::Version:
      inv.help = true;
      inv.text = versionLine("kubectl-paddock") + "\n";
      return inv;
    case Flags::Outcome::Error:
      inv.error = program + ": " + error + "\nRun '" + program + " --help' for its flags.";
      return inv;
    case Flags::Outcome::Ok:
      break;
  }
  auto fail = [&](const std::string& what) {
    inv.error = program + ": " + what + "\nUsage: " + program + " " + command->synopsis;
    return inv;
  };
  if (!inv.output.empty() && inv.output != "json" && inv.output != "yaml") {
    return fail("--output must be json or yaml, not \"" + inv.output + "\"");
  }
  if (inv.command == "list") {
    if (!positional.empty()) return fail("list takes no arguments; use -n NAMESPACE or -A");
    return inv;
  }
  if (inv.command == "completion") {
    if (positional.size() != 1 || (positional[0] != "bash" && positional[0] != "zsh" && positional[0] != "kubectl")) {
      return fail("name the shell: bash, zsh, or kubectl (for kubectl's plugin completion)");
    }
    inv.shell = positional[0];
    return inv;
  }
  if (positional.empty()) return fail("name the run");
  if (positional.size() > 1) return fail("expected one RUN, got " + std::to_string(positional.size()) + " arguments");
  inv.run = positional[0];
  if (decides && inv.stage.empty()) return fail("--stage is required: which gated stage of " + inv.run + " to " + inv.command);
  if (inv.stage == "agent" && decides) return fail("the agent stage needs no approval; name a gated stage such as pr");
  return inv;
}

std::string sanitizeName(std::string_view text, size_t max) {
  std::string out;
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c)) {
      out.push_back(static_cast<char>(std::tolower(c)));
    } else if (!out.empty() && out.back() != '-') {
      out.push_back('-');
    }
    if (out.size() >= max) break;
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "user" : out;
}

std::string approvalName(const std::string& run, const std::string& stage, const std::string& username,
                         const std::string& suffix) {
  return run + "-" + stage + "-" + sanitizeName(username) + "-" + suffix;
}

std::string randomSuffix() {
  static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";  // no vowels: no words by chance
  std::random_device device;
  std::mt19937 rng(device());
  std::uniform_int_distribution<size_t> pick(0, sizeof kAlphabet - 2);
  std::string out;
  for (int i = 0; i < 5; ++i) out.push_back(kAlphabet[pick(rng)]);
  return out;
}

nlohmann::json approvalObject(const std::string& name, const std::string& run, const std::string& stage,
                              const std::string& decision, const std::string& username,
                              const std::vector<std::string>& groups, const std::string& comment) {
  nlohmann::json approver = {{"username", username}};
  if (!groups.empty()) approver["groups"] = groups;
  nlohmann::json spec = {{"run", run}, {"stage", stage}, {"decision", decision}, {"approver", approver}};
  if (!comment.empty()) spec["comment"] = comment;
  return {{"apiVersion", "paddock.dev/v1alpha1"},
          {"kind", "AgentApproval"},
          {"metadata", {{"name", name}, {"labels", {{"paddock.dev/run", run}, {"paddock.dev/stage", stage}}}}},
          {"spec", spec}};
}

}  // namespace paddock::plugin
