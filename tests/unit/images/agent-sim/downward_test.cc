#include "images/agent-sim/downward.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include <unistd.h>

#include <gtest/gtest.h>

namespace paddock::agentsim {
namespace {
namespace fs = std::filesystem;

TEST(DownwardApi, QuotesAsGoDoes) {
  EXPECT_EQ(goQuote("plain"), "\"plain\"");
  EXPECT_EQ(goQuote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(goQuote("l1\nl2\tx"), "\"l1\\nl2\\tx\"");
  EXPECT_EQ(goQuote(std::string("\x01\x7f", 2)), "\"\\x01\\x7f\"");
  EXPECT_EQ(goQuote("caf\xc3\xa9"), "\"caf\xc3\xa9\"");  // UTF-8 kept
}

TEST(DownwardApi, UnquotesEverythingGoWrites) {
  for (const std::string& s : std::vector<std::string>{"", "plain", "a\"b\\c", "l1\nl2\tx\r\a\b\f\v", std::string("\x01\x7f", 2), "caf\xc3\xa9",
                        "{\"json\": [1, 2]}"}) {
    EXPECT_EQ(goUnquote(goQuote(s)), s) << s;
  }
  EXPECT_EQ(goUnquote("\"\\u00e9\\U0001F600\\101\\x41\""), "\xc3\xa9\xf0\x9f\x98\x80" "AA");
  EXPECT_EQ(goUnquote("unquoted"), std::nullopt);
  EXPECT_EQ(goUnquote("\"dangling\\\""), std::nullopt);
  EXPECT_EQ(goUnquote("\"bad \\q\""), std::nullopt);
  EXPECT_EQ(goUnquote("\"a\"b\""), std::nullopt);
  EXPECT_EQ(goUnquote("\"\\xZZ\""), std::nullopt);
}

TEST(DownwardApi, ParsesTheKubeletsAnnotationsFile) {
  // As the kubelet writes it: sorted, %q-quoted, no newline after the last line.
  std::string text =
      "kubectl.kubernetes.io/last-applied-configuration=\"{\\\"kind\\\":\\\"Pod\\\"}\\n\"\n"
      "paddock.dev/checkpoint=\"60\"\n"
      "with=\"an = sign\"";
  auto m = parseDownwardMap(text);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m["kubectl.kubernetes.io/last-applied-configuration"], "{\"kind\":\"Pod\"}\n");
  EXPECT_EQ(m[kCheckpointAnnotation], "60");
  EXPECT_EQ(m["with"], "an = sign");
  EXPECT_TRUE(parseDownwardMap("").empty());
  EXPECT_EQ(parseDownwardMap("garbage\n=\"x\"\nk=unquoted\nok=\"1\"\n").size(), 1u);
}

TEST(DownwardApi, FormatsSortedWithoutTrailingNewline) {
  std::map<std::string, std::string> m = {{"b", "2"}, {"a", "x\"y"}};
  EXPECT_EQ(formatDownwardMap(m), "a=\"x\\\"y\"\nb=\"2\"");
  EXPECT_EQ(parseDownwardMap(formatDownwardMap(m)), m);
  EXPECT_EQ(formatDownwardMap({}), "");
}

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(DownwardApi, ProjectsFilesThroughDataSymlinkAsTheKubeletDoes) {
  fs::path dir = fs::temp_directory_path() / ("paddock-downward-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  ASSERT_TRUE(projectFiles(dir.string(), {{"annotations", "a=\"1\""}, {"labels", "l=\"x\""}}).ok());
  EXPECT_TRUE(fs::is_symlink(dir / "..data"));
  EXPECT_TRUE(fs::is_symlink(dir / "annotations"));
  EXPECT_EQ(fs::read_symlink(dir / "annotations"), fs::path("..data/annotations"));
  EXPECT_EQ(read(dir / "annotations"), "a=\"1\"");
  auto first = fs::read_symlink(dir / "..data");

  ASSERT_TRUE(projectFiles(dir.string(), {{"annotations", "a=\"2\""}}).ok());
  EXPECT_EQ(read(dir / "annotations"), "a=\"2\"");
  EXPECT_NE(fs::read_symlink(dir / "..data"), first);
  EXPECT_FALSE(fs::exists(dir / first)) << "the old version is removed";
  EXPECT_FALSE(fs::exists(fs::symlink_status(dir / "labels"))) << "a name no longer projected is removed";
  EXPECT_FALSE(fs::exists(fs::symlink_status(dir / "..data_tmp")));
  int versions = 0;
  for (const auto& e : fs::directory_iterator(dir)) versions += e.is_directory() && !e.is_symlink();
  EXPECT_EQ(versions, 1);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace paddock::agentsim
