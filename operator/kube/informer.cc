#include "operator/kube/informer.h"

#include <algorithm>

#include "operator/common/json.h"
#include "operator/common/log.h"

namespace paddock::kube {

std::string objectKey(const json& object) {
  std::string ns = stringAt(object, "/metadata/namespace");
  std::string name = stringAt(object, "/metadata/name");
  return ns.empty() ? name : ns + "/" + name;
}

namespace {
std::string resourceVersionOf(const json& object, const std::string& otherwise = "") {
  std::string rv = stringAt(object, "/metadata/resourceVersion");
  return rv.empty() ? otherwise : rv;
}
}  // namespace

json stripBookkeeping(json object) {
  if (auto it = object.find("metadata"); it != object.end() && it->is_object()) {
    it->erase("managedFields");
    if (auto ann = it->find("annotations"); ann != it->end() && ann->is_object()) {
      ann->erase("kubectl.kubernetes.io/last-applied-configuration");
      if (ann->empty()) it->erase("annotations");
    }
  }
  return object;
}

std::shared_ptr<const Informer::Stored> Informer::encode(const json& object) {
  auto s = std::make_shared<Stored>();
  s->resource_version = resourceVersionOf(object);
  s->cbor = json::to_cbor(object);
  s->cbor.shrink_to_fit();
  return s;
}

ObjectPtr Informer::decode(const std::shared_ptr<const Stored>& stored) {
  if (!stored) return nullptr;
  return std::make_shared<const json>(json::from_cbor(stored->cbor));
}

Informer::Informer(Client& client, Resource resource, InformerOptions options)
    : client_(client), resource_(std::move(resource)), options_(std::move(options)) {}

bool Informer::waitForSync(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(sync_mu_);
  return sync_cv_.wait_for(lock, timeout, [&] { return synced_.load(); });
}

ObjectPtr Informer::get(const std::string& key) const {
  std::shared_ptr<const Stored> stored;
  {
    std::shared_lock lock(mu_);
    auto it = store_.find(key);
    if (it == store_.end()) return nullptr;
    stored = it->second;
  }
  return decode(stored);
}

std::vector<ObjectPtr> Informer::list() const {
  std::vector<std::shared_ptr<const Stored>> all;
  {
    std::shared_lock lock(mu_);
    all.reserve(store_.size());
    for (const auto& [k, v] : store_) all.push_back(v);
  }
  std::vector<ObjectPtr> out;
  out.reserve(all.size());
  for (const auto& s : all) out.push_back(decode(s));
  return out;
}

size_t Informer::size() const {
  std::shared_lock lock(mu_);
  return store_.size();
}

std::string Informer::resourceVersion() const {
  std::shared_lock lock(mu_);
  return resource_version_;
}

void Informer::notify(const InformerEvent& event) {
  for (const auto& h : handlers_) {
    try {
      h(event);
    } catch (const std::exception& e) {
      log::error("informer handler failed", {{"resource", resource_.plural}, {"key", event.key}, {"error", e.what()}});
    }
  }
}

std::string Informer::watchPath() const {
  std::string p = resource_.path(options_.namespace_) + "?watch=1&allowWatchBookmarks=true";
  if (!options_.label_selector.empty()) p += "&labelSelector=" + urlEncode(options_.label_selector);
  if (!options_.field_selector.empty()) p += "&fieldSelector=" + urlEncode(options_.field_selector);
  return p;
}

bool Informer::relist(const CancelToken& stop) {
  // Encode page by page, so memory holds one page of parsed objects at a time.
  std::unordered_map<std::string, std::shared_ptr<const Stored>> fresh;
  auto listed = client_.listPages(resource_, options_.namespace_,
                                  {options_.label_selector, options_.field_selector, options_.page_size},
                                  [&](std::vector<json>&& items) {
                                    for (auto& item : items) {
                                      if (!item.is_object()) continue;
                                      json obj = options_.transform(std::move(item));
                                      fresh.insert_or_assign(objectKey(obj), encode(obj));
                                    }
                                  },
                                  stop);
  if (!listed) {
    if (!stop.cancelled()) {
      log::warn("list failed", {{"resource", resource_.plural}, {"error", listed.error().describe()}});
    }
    return false;
  }
  // Swap the new contents in at once, then tell handlers what changed.
  std::unordered_map<std::string, std::shared_ptr<const Stored>> old;
  {
    std::unique_lock lock(mu_);
    old.swap(store_);
    store_ = fresh;
    resource_version_ = *listed;
  }
  ++stats_.lists;
  if (!handlers_.empty()) {
    for (const auto& [key, stored] : fresh) {
      auto it = old.find(key);
      if (it != old.end() && it->second->resource_version == stored->resource_version) continue;
      notify({InformerEvent::Type::Upsert, key, decode(stored), it == old.end() ? nullptr : decode(it->second)});
    }
    for (const auto& [key, stored] : old) {
      if (!fresh.count(key)) notify({InformerEvent::Type::Delete, key, decode(stored), nullptr});
    }
  }
  if (!synced_.exchange(true)) {
    std::lock_guard lock(sync_mu_);
    sync_cv_.notify_all();
  }
  log::debug("listed", {{"resource", resource_.plural}, {"objects", fresh.size()}, {"resourceVersion", *listed}});
  return true;
}

void Informer::upsert(ObjectPtr object) {
  std::string key = objectKey(*object);
  auto stored = encode(*object);
  std::shared_ptr<const Stored> previous;
  {
    std::unique_lock lock(mu_);
    auto& slot = store_[key];
    previous = slot;
    slot = stored;
    resource_version_ = stored->resource_version.empty() ? resource_version_ : stored->resource_version;
  }
  if (!handlers_.empty()) notify({InformerEvent::Type::Upsert, key, std::move(object), decode(previous)});
}

void Informer::erase(const std::string& key, ObjectPtr last) {
  std::shared_ptr<const Stored> known;
  {
    std::unique_lock lock(mu_);
    if (auto it = store_.find(key); it != store_.end()) {
      known = it->second;
      store_.erase(it);
    }
    resource_version_ = resourceVersionOf(*last, resource_version_);
  }
  notify({InformerEvent::Type::Delete, key, known ? decode(known) : last, nullptr});
}

Informer::WatchEnd Informer::watch(const CancelToken& stop) {
  std::string rv = resourceVersion();
  http::Request req{http::Method::Get, watchPath() + "&resourceVersion=" + urlEncode(rv) +
                                           "&timeoutSeconds=" + std::to_string(options_.timeout_seconds.count())};
  req.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(options_.timeout_seconds + options_.idle_margin);
  WatchEnd end = WatchEnd::Closed;
  got_events = false;
  auto result = client_.stream(resource_, req, [&](std::string_view line) {
    auto ev = json::parse(line, nullptr, false);
    if (!ev.is_object() || !ev.contains("object") || !ev["object"].is_object()) {
      log::warn("watch sent an event that is not an object: relisting", {{"resource", resource_.plural}});
      end = WatchEnd::Expired;
      return false;
    }
    std::string type = ev.value("type", "");
    auto& obj = ev["object"];
    if (type == "ERROR") {
      int code = static_cast<int>(intAt(obj, "/code"));
      if (code == 410) {
        end = WatchEnd::Expired;
      } else {
        log::warn("watch error", {{"resource", resource_.plural}, {"code", code},
                                  {"message", stringAt(obj, "/message")}});
        end = WatchEnd::Failed;
      }
      return false;
    }
    if (type == "BOOKMARK") {
      std::unique_lock lock(mu_);
      resource_version_ = resourceVersionOf(obj, resource_version_);
      return true;
    }
    try {
      auto stored = std::make_shared<const json>(options_.transform(std::move(obj)));
      if (type == "ADDED" || type == "MODIFIED") upsert(std::move(stored));
      else if (type == "DELETED") erase(objectKey(*stored), stored);
      ++stats_.events;
      got_events = true;
    } catch (const std::exception& e) {
      // An event the informer cannot take would come back on every reconnect: relist instead.
      log::error("cannot apply a watch event: relisting", {{"resource", resource_.plural}, {"error", e.what()}});
      end = WatchEnd::Expired;
      return false;
    }
    return !stop.cancelled();
  }, stop);
  if (stop.cancelled()) return WatchEnd::Stopped;
  if (!result) {
    if (result.error().reason == "Timeout") return WatchEnd::Silent;
    log::warn("watch connection failed", {{"resource", resource_.plural}, {"error", result.error().describe()}});
    return WatchEnd::Failed;
  }
  if (result->status == 410) return WatchEnd::Expired;
  if (result->status != 200) {
    auto e = errorFromResponse(*result);
    log::warn("watch refused", {{"resource", resource_.plural}, {"error", e.describe()}});
    return WatchEnd::Failed;
  }
  return end;
}

void Informer::run(const CancelToken& stop) {
  auto backoff = options_.backoff_initial;
  bool need_list = true;
  while (!stop.cancelled()) {
    if (need_list) {
      bool listed = false;
      try {
        listed = relist(stop);
      } catch (const std::exception& e) {
        log::error("cannot store a list", {{"resource", resource_.plural}, {"error", e.what()}});
      }
      if (!listed) {
        if (stop.waitFor(backoff)) break;
        backoff = std::min(backoff * 2, options_.backoff_max);
        continue;
      }
      need_list = false;
      backoff = options_.backoff_initial;
    }
    auto ended = watch(stop);
    if (got_events) backoff = options_.backoff_initial;
    switch (ended) {
      case WatchEnd::Stopped:
        return;
      case WatchEnd::Closed:  // the server ended the watch at timeoutSeconds: resume
        backoff = options_.backoff_initial;
        continue;
      case WatchEnd::Expired:
        ++stats_.relists_gone;
        ++stats_.watch_restarts;
        log::info("watch expired (410 Gone): relisting", {{"resource", resource_.plural}, {"resourceVersion", resourceVersion()}});
        need_list = true;
        continue;
      case WatchEnd::Silent:
        ++stats_.silent_restarts;
        ++stats_.watch_restarts;
        log::warn("watch went silent: reconnecting", {{"resource", resource_.plural},
                                                      {"silentFor", (options_.timeout_seconds + options_.idle_margin).count()}});
        break;
      case WatchEnd::Failed:
        ++stats_.watch_restarts;
        break;
    }
    if (stop.waitFor(backoff)) break;
    backoff = std::min(backoff * 2, options_.backoff_max);
  }
}

}  // namespace paddock::kube
