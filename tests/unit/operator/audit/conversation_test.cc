#include "operator/audit/conversation.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "operator/audit/blob.h"
#include "operator/audit/record.h"

namespace paddock::audit {
namespace {

using nlohmann::json;

json modelCall(uint64_t seq, json details) {
  Record r{seq, "2026-01-01T00:00:00.000000Z", Entry{"paddock-gateway", {"team-a", "r", ""}, Action::ModelCall, details},
           "", ""};
  return toJson(r);
}

TEST(Conversation, TellsEachCallAsAReviewerReadsIt) {
  const std::string long_result(5000, 'L');
  std::map<std::string, std::string> store = {{blobHash(long_result), long_result}};
  BlobReader blobs = [&](const std::string& h) -> Result<std::string> {
    auto it = store.find(h);
    if (it == store.end()) return Error::local("NotFound", "missing");
    return it->second;
  };
  std::vector<json> records = {
      modelCall(1, {{"model", "m"}, {"status", 200}, {"costUSD", "0.01"},
                    {"usage", {{"input", 100}, {"output", 20}, {"cacheRead", 0}, {"cacheWrite", 0}}},
                    {"messages", {{{"role", "user"}, {"content", "Fix the test."}}}},
                    {"response", {{"content", {{{"type", "text"}, {"text", "Editing."}},
                                               {{"type", "tool_use"}, {"id", "t1"}, {"name", "Edit"},
                                                {"input", {{"file_path", "a.cc"}}}}}},
                                  {"stopReason", "tool_use"}}},
                    {"spent", {{"tokens", 120}, {"costUSD", "0.01"}}}}),
      modelCall(2, {{"model", "m"}, {"status", 200}, {"costUSD", "0.02"}, {"checkpointSent", true},
                    {"messages", {{{"role", "user"},
                                   {"content", {{{"type", "tool_result"}, {"tool_use_id", "t1"},
                                                 {"content", blobRef(long_result)}}}}}}},
                    {"response", {{"content", {{{"type", "text"}, {"text", "Done."}}}}, {"stopReason", "end_turn"}}},
                    {"spent", {{"tokens", 300}, {"costUSD", "0.03"}}}}),
      modelCall(3, {{"model", "m"}, {"status", 502}, {"error", "upstream unreachable"},
                    {"messages", {{{"role", "user"}, {"content", blobRef("gone")}}}},
                    {"response", {{"content", json::array()}}}}),
  };
  std::string t = tellTranscript("team-a", "r", records, blobs);
  EXPECT_NE(t.find("Run team-a/r: 3 model calls"), std::string::npos) << t;
  EXPECT_NE(t.find("user:\n    Fix the test."), std::string::npos) << t;
  EXPECT_NE(t.find("assistant calls Edit (t1):\n    {\"file_path\":\"a.cc\"}"), std::string::npos) << t;
  EXPECT_NE(t.find("tool_result for t1:\n    " + long_result), std::string::npos) << "the blob is read back";
  EXPECT_NE(t.find("checkpoint instruction sent"), std::string::npos);
  EXPECT_NE(t.find("gateway: upstream unreachable"), std::string::npos);
  EXPECT_NE(t.find("[blob sha256:"), std::string::npos) << "a missing blob is named, not hidden";
  EXPECT_LT(t.find("Editing."), t.find("Done."));
  EXPECT_EQ(tellTranscript("team-a", "r", {}, blobs), "No model calls recorded for run team-a/r.\n");
}

TEST(Blob, PutReadAndTamper) {
  auto dir = std::filesystem::temp_directory_path() / ("paddock-blob-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(putBlob(dir.string(), "hello"));
  ASSERT_TRUE(putBlob(dir.string(), "hello"));  // idempotent
  std::string h = blobHash("hello");
  EXPECT_EQ(*readBlob(dir.string(), h), "hello");
  EXPECT_EQ(readBlob(dir.string(), blobHash("other")).error().reason, "NotFound");
  EXPECT_EQ(readBlob(dir.string(), "sha256:../../etc/passwd").error().reason, "DataLoss");
  std::ofstream(dir / "blobs" / h.substr(7, 2) / h.substr(7)) << "hellO";
  EXPECT_EQ(readBlob(dir.string(), h).error().reason, "DataLoss");
  std::vector<std::string> refs;
  collectBlobRefs(json{{"a", {blobRef("x"), {{"b", blobRef("y")}}}}, {"c", "z"}}, refs);
  EXPECT_EQ(refs, (std::vector<std::string>{blobHash("x"), blobHash("y")}));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace paddock::audit
