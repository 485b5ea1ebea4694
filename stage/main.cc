// paddock-stage: the stage image's program. `clone` fills the agent's workspace; `pr` proposes
// the agent's work as a pull request (after its own diff and checks); `deploy` stages a release at
// the deploy endpoint and `promote` promotes it. Each writes
// its result as JSON to --result (the pod's termination message, which the operator reads) and
// exits with a code per kind of outcome (stage/report.h). Wiring only: the work is in stage/.
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "operator/common/flags.h"
#include "operator/common/log.h"
#include "stage/report.h"
#include "stage/stages.h"

using namespace paddock;
using namespace paddock::stage;

namespace {

std::string env(const char* name, std::string otherwise = "") {
  const char* v = std::getenv(name);
  return v && *v ? v : otherwise;
}

int report(const Outcome& outcome, const std::string& path) {
  std::string text = renderResult(outcome.result);
  if (!path.empty() && path != "-") {
    std::ofstream out(path, std::ios::trunc);
    out << text;
    if (!out) log::error("cannot write the result", {{"path", path}});
  }
  std::cout << text << std::endl;
  auto level = outcome.exit_code == kSuccess ? log::Level::Info : log::Level::Error;
  log::write(level, "stage finished",
             {{"outcome", outcome.result.outcome}, {"reason", outcome.result.reason},
              {"message", outcome.result.message}, {"exitCode", outcome.exit_code}});
  return outcome.exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  PrOptions pr;
  DeployOptions deploy;
  CloneOptions clone;
  std::string run = env("PADDOCK_RUN"), ns = env("PADDOCK_NAMESPACE");
  std::string result_path = "/dev/termination-log";
  std::string token_file;
  std::string secrets_dir = env("PADDOCK_SECRETS_DIR", "/var/run/paddock/secrets");
  std::string log_level = "info";
  pr.task_file = env("PADDOCK_TASK_FILE");
  pr.canaries = env("PADDOCK_CANARIES");
  pr.scratch = env("TMPDIR", "/tmp");

  Flags flags("paddock-stage",
              "runs one step of a Paddock run: `paddock-stage clone`, `pr` or `deploy` (positional).\n"
              "  clone   the agent pod's init container: fetches the repository's base branch (shallow) into the\n"
              "          empty workspace, with origin set; --token-file, when given, is a read-only credential.\n"
              "  pr      diffs the workspace against the base branch (fetched from the remote), refuses protected\n"
              "          paths and anything that looks like a credential, adds a CHANGELOG entry with the run's\n"
              "          summary, pushes one commit by paddock to a fresh branch paddock/<run> and opens a pull\n"
              "          request through the forge's REST API (GitHub's, or Gitea's). It never merges.\n"
              "          With --base-commit (the commit the agent started from, as the clone recorded it), the change\n"
              "          is the workspace against that commit, merged onto the base branch as it is now; a conflict\n"
              "          stops the stage (exit 7).\n"
              "  deploy  POSTs {run, namespace, stage, ref, branch, commit} to the deploy endpoint with the\n"
              "          deploy token as a bearer token, to stage a release. Promotion is a stage of its own.\n"
              "  promote POSTs {run, namespace, stage, release} to the promotion endpoint with the deploy token,\n"
              "          to promote the release the deploy stage staged (--release).\n"
              "The result JSON and the exit codes are described in docs/stages.md.");
  flags.add("run", &run, "The run's name. Default: $PADDOCK_RUN.");
  flags.add("namespace", &ns, "The run's namespace. Default: $PADDOCK_NAMESPACE.");
  flags.add("result", &result_path,
            "Where the result JSON is written (the operator reads the termination message); - for stdout only.");
  flags.add("token-file", &token_file,
            "The token's secret file. Default: $PADDOCK_SECRETS_DIR/github-pr-token/token for pr, "
            "$PADDOCK_SECRETS_DIR/deploy-token/token for deploy and promote.");
  flags.add("workspace", &pr.workspace, "pr: the agent's workspace (its files are the change; its .git is not used).");
  flags.add("repository-file", &pr.repository_file, "pr: JSON with the repository's url and baseBranch.");
  flags.add("protected-paths-file", &pr.protected_paths_file,
            "pr: the policy's protected-path globs, one per line (** crosses folders). Empty: none.");
  flags.add("canaries-file", &pr.canaries_file,
            "pr: planted values that must never leave, one per line. $PADDOCK_CANARIES (comma-separated) adds more.");
  flags.add("summary-file", &pr.summary_file,
            "pr: the agent's summary, relative to the workspace (read without following links); else the task.");
  flags.add("task-file", &pr.task_file, "pr: the task, the summary when the agent wrote none. Default: $PADDOCK_TASK_FILE.");
  flags.add("forge", &pr.forge, "pr: the forge's API: github (default) or gitea.");
  flags.add("forge-api-url", &pr.forge_api_url,
            "pr: the forge's REST API. Default: from the repository URL (https://api.github.com for github.com, "
            "https://HOST/api/v3 for GitHub Enterprise, https://HOST/api/v1 for Gitea).");
  flags.add("forge-repository", &pr.forge_repository, "pr: OWNER/NAME on the forge. Default: from the repository URL.");
  flags.add("pull-request", &pr.open_pull_request, "pr: open the pull request after pushing (--pull-request=false: push only).");
  flags.add("git", &pr.git, "pr: the git program.");
  flags.add("scratch", &pr.scratch, "pr: where the stage's own git directory is made. Default: $TMPDIR or /tmp.");
  flags.add("date", &pr.date, "pr: the CHANGELOG entry's date, YYYY-MM-DD. Default: today (UTC).");
  flags.add("base-commit", &pr.base_commit,
            "pr: the commit the agent started from (40 or 64 hex digits), as the clone recorded it. Default: none "
            "(the workspace against the base branch's tip).");
  flags.add("partial", &pr.partial,
            "pr: why the agent was stopped before it finished (its budget ran out): the pull request is opened as "
            "a draft of its partial work and says so. Default: none (a finished task, a ready pull request).");
  flags.add("into", &clone.into, "clone: the (empty) workspace to clone the base branch into.");
  flags.add("deploy-url", &deploy.deploy_url, "deploy, promote: the endpoint's URL.");
  flags.add("deploy-url-file", &deploy.deploy_url_file, "deploy, promote: a file holding the endpoint's URL.");
  flags.add("release", &deploy.release, "promote: the id of the release the deploy stage staged.");
  flags.add("ref", &deploy.ref, "deploy: the ref to stage. Default: paddock/<run>.");
  flags.add("commit", &deploy.commit, "deploy: the commit to stage, when known.");
  flags.add("log-level", &log_level, "Least severe log level written: debug, info, warn or error.");
  flags.setEpilog(
      "Environment: PADDOCK_RUN, PADDOCK_NAMESPACE, PADDOCK_STAGE, PADDOCK_TASK_FILE, PADDOCK_SECRETS_DIR,\n"
      "PADDOCK_CANARIES (as the operator sets them in a stage pod).\n"
      "Exit codes: 0 success; 1 failed (workspace, git); 2 usage; 3 refused (protected path or credential);\n"
      "4 forge error (fetch, push, pull request); 5 deploy endpoint error; 6 no changes to propose;\n"
      "7 conflict (the base moved and the change does not merge onto it).\n");
  std::vector<std::string> positional;
  flags.parseOrExit(argc, argv, &positional);

  log::Level level;
  if (!log::parseLevel(log_level, level)) {
    log::error("invalid --log-level", {{"value", log_level}});
    return kUsage;
  }
  log::setLevel(level);
  std::string stage = positional.empty() ? env("PADDOCK_STAGE") : positional.front();
  log::setBaseFields({{"component", "stage"}, {"stage", stage}, {"agentrun", run}, {"namespace", ns}});

  if (stage == "pr" && positional.size() <= 1) {
    pr.run = {run, ns};
    pr.token_file = token_file.empty() ? secrets_dir + "/github-pr-token/token" : token_file;
    return report(runPr(pr), result_path);
  }
  if (stage == "clone" && positional.size() <= 1) {
    clone.run = {run, ns};
    clone.repository_file = pr.repository_file;
    clone.token_file = token_file;
    clone.git = pr.git;
    return report(runClone(clone), result_path);
  }
  if ((stage == "deploy" || stage == "promote") && positional.size() <= 1) {
    deploy.run = {run, ns};
    deploy.token_file = token_file.empty() ? secrets_dir + "/deploy-token/token" : token_file;
    return report(stage == "deploy" ? runDeploy(deploy) : runPromote(deploy), result_path);
  }
  Outcome bad;
  bad.result.stage = stage;
  bad.result.outcome = "UsageError";
  bad.result.reason = "UnknownStage";
  bad.result.message = "usage: paddock-stage clone|pr|deploy|promote [flags] (see --help); got \"" + stage + "\"" +
                       (positional.size() > 1 ? " with extra arguments" : "");
  bad.exit_code = kUsage;
  return report(bad, result_path);
}
