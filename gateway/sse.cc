#include "gateway/sse.h"

#include <algorithm>

namespace paddock::gateway {

using nlohmann::json;

std::vector<SseEvent> SseParser::feed(std::string_view bytes) {
  std::vector<SseEvent> out;
  for (char c : bytes) {
    if (c != '\n') {
      line_.push_back(c);
      continue;
    }
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    if (line_.empty()) {
      if (has_data_ || !current_.event.empty()) out.push_back(std::move(current_));
      current_ = {};
      has_data_ = false;
    } else if (line_.starts_with("event:")) {
      current_.event = line_.substr(line_.size() > 6 && line_[6] == ' ' ? 7 : 6);
    } else if (line_.starts_with("data:")) {
      if (has_data_) current_.data.push_back('\n');
      current_.data += line_.substr(line_.size() > 5 && line_[5] == ' ' ? 6 : 5);
      has_data_ = true;
    }
    line_.clear();
  }
  return out;
}

namespace {

// The model API's answer is untrusted input: a field of the wrong type reads as missing.
std::string stringAt(const json& j, const char* key, std::string fallback = "") {
  if (j.is_object()) {
    auto it = j.find(key);
    if (it != j.end() && it->is_string()) return it->get<std::string>();
  }
  return fallback;
}

const json& objectAt(const json& j, const char* key) {
  static const json kNone;
  if (!j.is_object()) return kNone;
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : kNone;
}

}  // namespace

void ResponseAccumulator::readUsage(const json& u) {
  if (!u.is_object()) return;
  // A count that is not a non-negative integer is ignored: it could only lower the charge.
  auto take = [&](const char* key, int64_t& into) {
    auto it = u.find(key);
    if (it != u.end() && it->is_number_integer() && it->get<int64_t>() >= 0) into = it->get<int64_t>();
  };
  take("input_tokens", usage_.input);
  take("output_tokens", usage_.output);
  take("cache_read_input_tokens", usage_.cache_read);
  take("cache_creation_input_tokens", usage_.cache_write);
  saw_usage_ = true;
}

size_t ResponseAccumulator::blockIndex(const json& d) const {
  const size_t last = blocks_.size() - 1;
  auto it = d.find("index");
  if (it == d.end() || !it->is_number_unsigned()) return last;
  return std::min<size_t>(it->get<uint64_t>(), last);
}

void ResponseAccumulator::onEvent(const SseEvent& e) {
  json d = json::parse(e.data, nullptr, false);
  if (d.is_discarded() || !d.is_object()) return;
  const std::string type = stringAt(d, "type", e.event);
  if (type == "message_start") {
    readUsage(objectAt(objectAt(d, "message"), "usage"));
  } else if (type == "content_block_start" && d.contains("content_block")) {
    const json& block = d["content_block"];
    blocks_.push_back(block.is_object() ? block : json::object());
    partial_json_.emplace_back();
  } else if (type == "content_block_delta" && !blocks_.empty()) {
    const json& delta = objectAt(d, "delta");
    const size_t i = blockIndex(d);
    const std::string dt = stringAt(delta, "type");
    if (dt == "text_delta") {
      blocks_[i]["text"] = stringAt(blocks_[i], "text") + stringAt(delta, "text");
    } else if (dt == "input_json_delta") {
      partial_json_[i] += stringAt(delta, "partial_json");
    } else if (dt == "thinking_delta") {
      blocks_[i]["thinking"] = stringAt(blocks_[i], "thinking") + stringAt(delta, "thinking");
    }
  } else if (type == "content_block_stop" && !blocks_.empty()) {
    const size_t i = blockIndex(d);
    if (!partial_json_[i].empty()) {
      json input = json::parse(partial_json_[i], nullptr, false);
      blocks_[i]["input"] = input.is_discarded() ? json(partial_json_[i]) : input;
    }
  } else if (type == "message_delta") {
    const json& delta = objectAt(d, "delta");
    if (delta.contains("stop_reason") && delta["stop_reason"].is_string()) {
      stop_reason_ = delta["stop_reason"].get<std::string>();
    }
    readUsage(objectAt(d, "usage"));
  } else if (type == "message_stop") {
    complete_ = true;
  } else if (type == "error") {
    error_type_ = stringAt(objectAt(d, "error"), "type", "error");
  }
}

void ResponseAccumulator::onMessage(const json& m) {
  if (!m.is_object()) return;
  if (m.contains("content") && m["content"].is_array()) blocks_ = m["content"];
  if (m.contains("stop_reason") && m["stop_reason"].is_string()) stop_reason_ = m["stop_reason"];
  readUsage(objectAt(m, "usage"));
  complete_ = stringAt(m, "type") == "message";
}

json ResponseAccumulator::content() const { return blocks_; }

}  // namespace paddock::gateway
