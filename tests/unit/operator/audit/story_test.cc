#include "operator/audit/story.h"

#include <gtest/gtest.h>

#include "operator/audit/record.h"

namespace paddock::audit {
namespace {

nlohmann::json record(uint64_t seq, Action action, std::string actor, nlohmann::json details, std::string name = "r") {
  Record r{seq, "2026-01-01T00:00:0" + std::to_string(seq) + ".000000Z",
           Entry{std::move(actor), {"team-a", std::move(name), "uid-1"}, action, std::move(details)}, "", ""};
  return toJson(r);
}

TEST(Story, TellsWhatWasAskedWhatHappenedWhoApprovedAndWhatWasSpent) {
  std::vector<nlohmann::json> records = {
      record(1, Action::RunAdmitted, "paddock-operator", {{"policy", "default"}, {"task", "fix the flaky test"}}),
      record(2, Action::SecretMounted, "paddock-operator", {{"secret", "git"}, {"key", "token"}}),
      record(3, Action::ApprovalRefused, "mallory", {{"stage", "pr"}, {"reason", "not an approver"}}),
      record(4, Action::ApprovalCounted, "alice", {{"stage", "pr"}}),
      record(5, Action::RunFinished, "paddock-operator", {{"phase", "Succeeded"}, {"spent", {{"usd", 1.5}}}}),
  };
  ASSERT_TRUE(isForRun(records[0], "team-a", "r"));
  EXPECT_FALSE(isForRun(records[0], "team-a", "other"));
  EXPECT_FALSE(isForRun(records[0], "team-b", "r"));

  std::string story = tellStory("team-a", "r", records);
  EXPECT_NE(story.find("Run team-a/r: 5 audit records"), std::string::npos) << story;
  EXPECT_LT(story.find("#1  RunAdmitted"), story.find("#5  RunFinished")) << "in chain order";
  EXPECT_NE(story.find("Asked:     RunAdmitted: policy=default, task=fix the flaky test"), std::string::npos) << story;
  EXPECT_NE(story.find("Approved:  alice (stage=pr)"), std::string::npos) << story;
  EXPECT_NE(story.find("Refused:   mallory (reason=not an approver, stage=pr)"), std::string::npos) << story;
  EXPECT_NE(story.find("Spent:     {\"usd\":1.5}"), std::string::npos) << story;
  EXPECT_NE(story.find("Outcome:   phase=Succeeded"), std::string::npos) << story;
}

TEST(Story, SaysSoWhenThereIsNothingToTell) {
  EXPECT_EQ(tellStory("ns", "r", {}), "No audit records for run ns/r.\n");
  std::string story = tellStory("ns", "r", {record(1, Action::StageStarted, "paddock-operator", {{"stage", "pr"}})});
  EXPECT_NE(story.find("(no approvals)"), std::string::npos);
  EXPECT_NE(story.find("(not finished)"), std::string::npos);
}

}  // namespace
}  // namespace paddock::audit
