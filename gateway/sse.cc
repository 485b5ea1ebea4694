#include "gateway/sse.h"

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

void ResponseAccumulator::readUsage(const json& u) {
  if (!u.is_object()) return;
  auto take = [&](const char* key, int64_t& into) {
    if (u.contains(key) && u[key].is_number_integer()) into = u[key].get<int64_t>();
  };
  take("input_tokens", usage_.input);
  take("output_tokens", usage_.output);
  take("cache_read_input_tokens", usage_.cache_read);
  take("cache_creation_input_tokens", usage_.cache_write);
  saw_usage_ = true;
}

void ResponseAccumulator::onEvent(const SseEvent& e) {
  json d = json::parse(e.data, nullptr, false);
  if (d.is_discarded() || !d.is_object()) return;
  std::string type = d.value("type", e.event);
  if (type == "message_start" && d.contains("message")) {
    readUsage(d["message"].value("usage", json()));
  } else if (type == "content_block_start" && d.contains("content_block")) {
    blocks_.push_back(d["content_block"]);
    partial_json_.emplace_back();
  } else if (type == "content_block_delta" && !blocks_.empty() && d.contains("delta")) {
    const json& delta = d["delta"];
    size_t i = std::min<size_t>(d.value("index", blocks_.size() - 1), blocks_.size() - 1);
    std::string dt = delta.value("type", "");
    if (dt == "text_delta") {
      blocks_[i]["text"] = blocks_[i].value("text", "") + delta.value("text", "");
    } else if (dt == "input_json_delta") {
      partial_json_[i] += delta.value("partial_json", "");
    } else if (dt == "thinking_delta") {
      blocks_[i]["thinking"] = blocks_[i].value("thinking", "") + delta.value("thinking", "");
    }
  } else if (type == "content_block_stop" && !blocks_.empty()) {
    size_t i = std::min<size_t>(d.value("index", blocks_.size() - 1), blocks_.size() - 1);
    if (!partial_json_[i].empty()) {
      json input = json::parse(partial_json_[i], nullptr, false);
      blocks_[i]["input"] = input.is_discarded() ? json(partial_json_[i]) : input;
    }
  } else if (type == "message_delta") {
    if (d.contains("delta") && d["delta"].contains("stop_reason") && d["delta"]["stop_reason"].is_string()) {
      stop_reason_ = d["delta"]["stop_reason"].get<std::string>();
    }
    readUsage(d.value("usage", json()));
  } else if (type == "message_stop") {
    complete_ = true;
  } else if (type == "error") {
    error_type_ = d.contains("error") ? d["error"].value("type", "error") : "error";
  }
}

void ResponseAccumulator::onMessage(const json& m) {
  if (!m.is_object()) return;
  if (m.contains("content") && m["content"].is_array()) blocks_ = m["content"];
  if (m.contains("stop_reason") && m["stop_reason"].is_string()) stop_reason_ = m["stop_reason"];
  readUsage(m.value("usage", json()));
  complete_ = m.value("type", "") == "message";
}

json ResponseAccumulator::content() const { return blocks_; }

}  // namespace paddock::gateway
