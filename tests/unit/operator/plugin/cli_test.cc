#include "operator/plugin/cli.h"

#include <gtest/gtest.h>

namespace paddock::plugin {
namespace {

TEST(PluginArgs, GlobalFlagsStandBeforeOrAfterTheCommandAndShortFormsExpand) {
  auto inv = parseArgs({"-n", "payments", "--kubeconfig", "/k", "approve", "ship", "--stage", "pr", "-m", "looks good",
                        "--context=prod"});
  ASSERT_EQ(inv.error, "");
  EXPECT_FALSE(inv.help);
  EXPECT_EQ(inv.command, "approve");
  EXPECT_EQ(inv.ns, "payments");
  EXPECT_EQ(inv.kubeconfig, "/k");
  EXPECT_EQ(inv.context, "prod");
  EXPECT_EQ(inv.run, "ship");
  EXPECT_EQ(inv.stage, "pr");
  EXPECT_EQ(inv.message, "looks good");

  inv = parseArgs({"reject", "ship", "--stage=deploy", "-npayments", "-m=no"});
  ASSERT_EQ(inv.error, "");
  EXPECT_EQ(inv.command, "reject");
  EXPECT_EQ(inv.ns, "payments");
  EXPECT_EQ(inv.stage, "deploy");
  EXPECT_EQ(inv.message, "no");

  inv = parseArgs({"audit", "ship", "--store", "mongodb://db/audit"});
  ASSERT_EQ(inv.error, "");
  EXPECT_EQ(inv.store, "mongodb://db/audit");
  EXPECT_EQ(inv.ns, "");  // the kubeconfig context's, later

  inv = parseArgs({"transcript", "ship", "-n", "payments", "--store", "/var/lib/paddock/gateway-audit"});
  ASSERT_EQ(inv.error, "");
  EXPECT_EQ(inv.command, "transcript");
  EXPECT_EQ(inv.store, "/var/lib/paddock/gateway-audit");
  EXPECT_NE(parseArgs({"transcript"}).error.find("name the run"), std::string::npos);

  inv = parseArgs({"logs", "ship", "--stage", "pr"});
  ASSERT_EQ(inv.error, "");
  EXPECT_EQ(inv.stage, "pr");
}

TEST(PluginArgs, HelpForThePluginAndEveryCommand) {
  for (auto args : std::vector<std::vector<std::string>>{{}, {"--help"}, {"-h"}, {"-n", "x", "--help"}}) {
    auto inv = parseArgs(args);
    EXPECT_TRUE(inv.help);
    EXPECT_NE(inv.text.find("approve RUN --stage STAGE"), std::string::npos) << inv.text;
    EXPECT_NE(inv.text.find("--kubeconfig"), std::string::npos);
  }
  for (const char* c : {"approve", "reject", "cancel", "status", "logs", "audit", "transcript"}) {
    auto inv = parseArgs({c, "--help"});
    EXPECT_TRUE(inv.help) << c;
    EXPECT_NE(inv.text.find(std::string("kubectl paddock ") + c), std::string::npos) << inv.text;
    EXPECT_NE(inv.text.find("--namespace"), std::string::npos) << inv.text;
  }
  EXPECT_NE(parseArgs({"audit", "-h"}).text.find("--store"), std::string::npos);
  EXPECT_NE(parseArgs({"transcript", "-h"}).text.find("--store"), std::string::npos);
}

TEST(PluginArgs, MistakesSayWhatIsWrong) {
  auto error = [](std::vector<std::string> args) { return parseArgs(args).error; };
  EXPECT_NE(error({"approve", "ship"}).find("--stage is required"), std::string::npos);
  EXPECT_NE(error({"approve", "ship", "--stage", "agent"}).find("agent stage needs no approval"), std::string::npos);
  EXPECT_NE(error({"status"}).find("name the run"), std::string::npos);
  EXPECT_NE(error({"status", "a", "b"}).find("expected one RUN"), std::string::npos);
  EXPECT_NE(error({"merge", "ship"}).find("unknown command \"merge\""), std::string::npos);
  EXPECT_NE(error({"-n", "x"}).find("no command"), std::string::npos);
  EXPECT_NE(error({"cancel", "ship", "--stage", "pr"}).find("unknown flag --stage"), std::string::npos);
  EXPECT_NE(error({"status", "ship", "--namespace"}).find("needs a value"), std::string::npos);
}

TEST(PluginNames, SanitizedUserNamesAreValidNameParts) {
  EXPECT_EQ(sanitizeName("bob"), "bob");
  EXPECT_EQ(sanitizeName("Bob.Smith@Example.com"), "bob-smith-example-com");
  EXPECT_EQ(sanitizeName("system:serviceaccount:ci:deployer"), "system-serviceaccount-ci-deployer");
  EXPECT_EQ(sanitizeName("--weird__name--"), "weird-name");
  EXPECT_EQ(sanitizeName(":::"), "user");
  EXPECT_EQ(sanitizeName(""), "user");
  EXPECT_EQ(sanitizeName("abcdefghij-klm", 11), "abcdefghij");  // no '-' left at the cut
  EXPECT_EQ(sanitizeName(std::string(100, 'a')).size(), 40u);
}

TEST(PluginNames, ApprovalNamesAndObjects) {
  EXPECT_EQ(approvalName("ship", "pr", "Bob@corp", "x7k2q"), "ship-pr-bob-corp-x7k2q");
  auto a = randomSuffix(), b = randomSuffix();
  EXPECT_EQ(a.size(), 5u);
  EXPECT_EQ(a.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789"), std::string::npos);
  EXPECT_NE(a + randomSuffix(), b + randomSuffix());

  auto o = approvalObject("ship-pr-bob-x7k2q", "ship", "pr", "Approve", "bob", {"team", "system:authenticated"}, "lgtm");
  EXPECT_EQ(o["kind"], "AgentApproval");
  EXPECT_EQ(o["metadata"]["name"], "ship-pr-bob-x7k2q");
  EXPECT_EQ(o["spec"]["run"], "ship");
  EXPECT_EQ(o["spec"]["stage"], "pr");
  EXPECT_EQ(o["spec"]["decision"], "Approve");
  EXPECT_EQ(o["spec"]["approver"]["username"], "bob");
  EXPECT_EQ(o["spec"]["approver"]["groups"], (nlohmann::json{"team", "system:authenticated"}));
  EXPECT_EQ(o["spec"]["comment"], "lgtm");
  auto bare = approvalObject("n", "ship", "pr", "Reject", "eve", {}, "");
  EXPECT_FALSE(bare["spec"].contains("comment"));
  EXPECT_FALSE(bare["spec"]["approver"].contains("groups"));
}

TEST(PluginArgs, ReadCommandsTakeOutputFormatsListTakesAllNamespaces) {
  auto inv = parseArgs({"list", "-A", "-o", "yaml"});
  ASSERT_EQ(inv.error, "");
  EXPECT_EQ(inv.command, "list");
  EXPECT_TRUE(inv.all_namespaces);
  EXPECT_EQ(inv.output, "yaml");
  inv = parseArgs({"status", "ship", "--output=json"});
  ASSERT_EQ(inv.error, "");
  EXPECT_EQ(inv.output, "json");
  inv = parseArgs({"watch", "ship", "-ojson"});
  ASSERT_EQ(inv.error, "");
  EXPECT_EQ(inv.command, "watch");
  EXPECT_EQ(inv.run, "ship");
  EXPECT_EQ(inv.output, "json");
  EXPECT_NE(parseArgs({"status", "ship", "-o", "wide"}).error.find("--output must be json or yaml, not \"wide\""), std::string::npos);
  EXPECT_NE(parseArgs({"cancel", "ship", "-o", "json"}).error.find("unknown flag --output"), std::string::npos)
      << "cancel writes; it has no output format";
  EXPECT_NE(parseArgs({"list", "ship"}).error.find("list takes no arguments"), std::string::npos);
}

TEST(PluginArgs, CompletionNamesItsShellAndCompleteTakesTheWordsVerbatim) {
  auto inv = parseArgs({"completion", "zsh"});
  ASSERT_EQ(inv.error, "");
  EXPECT_EQ(inv.shell, "zsh");
  EXPECT_NE(parseArgs({"completion", "fish"}).error.find("bash, zsh, or kubectl"), std::string::npos);
  inv = parseArgs({"__complete", "approve", "-n", ""});
  ASSERT_EQ(inv.error, "");
  EXPECT_EQ(inv.command, "__complete");
  EXPECT_EQ(inv.complete_args, (std::vector<std::string>{"approve", "-n", ""}));
  inv = parseArgs({"--kubeconfig", "/k", "-n", "payments", "__complete", "status", "se"});
  EXPECT_EQ(inv.command, "__complete");
  EXPECT_EQ(inv.kubeconfig, "/k");
  EXPECT_EQ(inv.ns, "payments");
  EXPECT_EQ(inv.complete_args, (std::vector<std::string>{"status", "se"}));
  inv = parseArgs({"--version"});
  EXPECT_TRUE(inv.help);
  EXPECT_EQ(inv.text.rfind("kubectl-paddock ", 0), 0u) << inv.text;
}

}  // namespace
}  // namespace paddock::plugin
