#include "operator/audit/conversation.h"

#include "operator/audit/blob.h"
#include "operator/common/json.h"

namespace paddock::audit {
namespace {

using nlohmann::json;

// A string, or the blob it was moved to.
std::string textOf(const json& v, const BlobReader& blobs) {
  if (v.is_string()) return v.get<std::string>();
  if (auto hash = blobRefHash(v)) {
    auto bytes = blobs(*hash);
    return bytes ? *bytes : "[blob " + *hash + ": " + bytes.error().message + "]";
  }
  return v.dump();
}

std::string indent(const std::string& text) {
  std::string out = "    ";
  for (char c : text) {
    out.push_back(c);
    if (c == '\n') out += "    ";
  }
  return out + "\n";
}

// One message's content (a string or blocks) from `speaker`.
std::string tellContent(const std::string& speaker, const json& content, const BlobReader& blobs) {
  if (!content.is_array()) return speaker + ":\n" + indent(textOf(content, blobs));
  std::string out;
  for (const auto& b : content) {
    std::string type = b.value("type", "");
    if (type == "text") {
      out += speaker + ":\n" + indent(textOf(b.value("text", json("")), blobs));
    } else if (type == "tool_use") {
      out += speaker + " calls " + b.value("name", "?") + " (" + b.value("id", "") + "):\n" +
             indent(b.contains("input") ? textOf(b["input"], blobs) : "{}");
    } else if (type == "tool_result") {
      std::string result;
      const json& c = b.value("content", json(""));
      if (c.is_array()) {
        for (const auto& part : c) result += part.value("type", "") == "text" ? textOf(part["text"], blobs) : "[" + part.value("type", "") + "]";
      } else {
        result = textOf(c, blobs);
      }
      out += "tool_result for " + b.value("tool_use_id", "") + (b.value("is_error", false) ? " (error)" : "") + ":\n" +
             indent(result);
    } else if (type == "thinking") {
      out += speaker + " thinks:\n" + indent(textOf(b.value("thinking", json("")), blobs));
    } else {
      out += speaker + ": [" + type + "]\n";
    }
  }
  return out;
}

std::string callHeader(int n, const json& r) {
  const json& d = r["details"];
  const json& u = d.value("usage", json::object());
  std::string head = "── call " + std::to_string(n) + " · #" + std::to_string(intAt(r, "/seq")) + " · " +
                     stringAt(r, "/time") + " · " + d.value("model", "") + " · status " +
                     std::to_string(d.value("status", 0)) + " · tokens in " + std::to_string(u.value("input", 0)) +
                     " out " + std::to_string(u.value("output", 0)) + " cache r/w " +
                     std::to_string(u.value("cacheRead", 0)) + "/" + std::to_string(u.value("cacheWrite", 0)) +
                     " · $" + d.value("costUSD", "0");
  if (d.value("checkpointSent", false)) head += " · checkpoint instruction sent";
  return head + "\n";
}

}  // namespace

std::string tellTranscript(std::string_view ns, std::string_view name, const std::vector<json>& records,
                           const BlobReader& blobs) {
  std::string run = std::string(ns) + "/" + std::string(name);
  std::string out;
  int n = 0;
  std::string spent;
  for (const auto& r : records) {
    if (stringAt(r, "/action") != "ModelCall" || !r.contains("details")) continue;
    const json& d = r["details"];
    out += "\n" + callHeader(++n, r);
    for (const auto& m : d.value("messages", json::array())) {
      out += tellContent(m.value("role", "?"), m.value("content", json("")), blobs);
    }
    if (d.contains("error")) out += "gateway: " + textOf(d["error"], blobs) + "\n";
    const json& resp = d.value("response", json::object());
    out += tellContent("assistant", resp.value("content", json::array()), blobs);
    if (!resp.value("stopReason", "").empty()) out += "(stop: " + resp.value("stopReason", "") + ")\n";
    const json& s = d.value("spent", json::object());
    spent = std::to_string(s.value("tokens", 0)) + " tokens, $" + s.value("costUSD", "0");
  }
  if (n == 0) return "No model calls recorded for run " + run + ".\n";
  return "Run " + run + ": " + std::to_string(n) + " model calls\n" + out + "\nSpent through the gateway: " + spent + "\n";
}

}  // namespace paddock::audit
