#include "images/agent-sim/downward.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <system_error>

#include <unistd.h>

namespace paddock::agentsim {
namespace fs = std::filesystem;
namespace {

void appendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Reads `digits` digits in `base` from s[i..]; -1 when they are not all there.
long readDigits(std::string_view s, size_t i, int digits, int base) {
  if (i + digits > s.size()) return -1;
  long v = 0;
  for (int k = 0; k < digits; ++k) {
    char c = s[i + k];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : 99;
    if (d >= base) return -1;
    v = v * base + d;
  }
  return v;
}

}  // namespace

std::string goQuote(std::string_view s) {
  static const char* hex = "0123456789abcdef";
  std::string out = "\"";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '\a': out += "\\a"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\v': out += "\\v"; break;
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\x";
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 0xF]);
        } else {
          out.push_back(ch);
        }
    }
  }
  return out + "\"";
}

std::optional<std::string> goUnquote(std::string_view q) {
  if (q.size() < 2 || q.front() != '"' || q.back() != '"') return std::nullopt;
  std::string_view s = q.substr(1, q.size() - 2);
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '"' || c == '\n') return std::nullopt;  // must have been escaped
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (++i >= s.size()) return std::nullopt;
    long v = 0;
    switch (s[i]) {
      case 'a': out.push_back('\a'); break;
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case 'v': out.push_back('\v'); break;
      case '\\': out.push_back('\\'); break;
      case '"': out.push_back('"'); break;
      case 'x':
        if ((v = readDigits(s, i + 1, 2, 16)) < 0) return std::nullopt;
        out.push_back(static_cast<char>(v));
        i += 2;
        break;
      case 'u':
      case 'U': {
        int n = s[i] == 'u' ? 4 : 8;
        if ((v = readDigits(s, i + 1, n, 16)) < 0 || v > 0x10FFFF || (v >= 0xD800 && v < 0xE000)) return std::nullopt;
        appendUtf8(out, static_cast<uint32_t>(v));
        i += n;
        break;
      }
      default:
        if ((v = readDigits(s, i, 3, 8)) < 0 || v > 255) return std::nullopt;
        out.push_back(static_cast<char>(v));
        i += 2;
    }
  }
  return out;
}

std::map<std::string, std::string> parseDownwardMap(std::string_view text) {
  std::map<std::string, std::string> out;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    auto eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    if (auto value = goUnquote(line.substr(eq + 1))) out[std::string(line.substr(0, eq))] = std::move(*value);
  }
  return out;
}

std::string formatDownwardMap(const std::map<std::string, std::string>& entries) {
  std::string out;
  for (const auto& [key, value] : entries) {
    if (!out.empty()) out.push_back('\n');
    out += key + "=" + goQuote(value);
  }
  return out;
}

Status projectFiles(const std::string& dir, const std::map<std::string, std::string>& files) {
  static std::atomic<unsigned> sequence{0};
  std::error_code ec;
  auto fail = [&](const std::string& what) {
    return Error::local("ProjectFailed", what + " in " + dir + ": " + ec.message());
  };
  fs::create_directories(dir, ec);
  if (ec) return fail("cannot create the directory");
  fs::path root(dir);
  // ..<time>.<pid>.<n>: unique even for two writes in the same instant.
  auto now = std::chrono::system_clock::now().time_since_epoch();
  std::string version = "..paddock_" + std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count()) +
                        "." + std::to_string(::getpid()) + "." + std::to_string(sequence++);
  fs::create_directory(root / version, ec);
  if (ec) return fail("cannot create " + version);
  for (const auto& [name, content] : files) {
    std::ofstream out(root / version / name, std::ios::binary | std::ios::trunc);
    out << content;
    out.close();
    if (!out) return Error::local("ProjectFailed", "cannot write " + name + " in " + dir);
  }
  // The old version, to remove once ..data no longer points at it.
  fs::path old;
  if (fs::is_symlink(root / "..data", ec)) old = fs::read_symlink(root / "..data", ec);
  fs::remove(root / "..data_tmp", ec);
  fs::create_directory_symlink(version, root / "..data_tmp", ec);
  if (ec) return fail("cannot link ..data_tmp");
  fs::rename(root / "..data_tmp", root / "..data", ec);
  if (ec) return fail("cannot rename ..data_tmp to ..data");
  for (const auto& [name, content] : files) {
    if (fs::is_symlink(fs::symlink_status(root / name))) continue;
    fs::create_symlink(fs::path("..data") / name, root / name, ec);
    if (ec) return fail("cannot link " + name);
  }
  // Names projected before but not now.
  std::set<std::string> keep;
  for (const auto& entry : files) keep.insert(entry.first);
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("..", 0) != 0 && !keep.count(name) && fs::is_symlink(entry.symlink_status())) fs::remove(entry.path(), ec);
  }
  std::string old_name = old.filename().string();
  if (old_name.rfind("..", 0) == 0 && old_name != version) fs::remove_all(root / old_name, ec);
  return Ok{};
}

}  // namespace paddock::agentsim
