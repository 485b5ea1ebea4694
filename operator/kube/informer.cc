#include "operator/kube/informer.h"

#include <algorithm>

#include "operator/common/log.h"

namespace paddock::kube {

std::string objectKey(const json& object) {
  std::string ns = object.value(json::json_pointer("/metadata/namespace"), std::string());
  std::string name = object.value(json::json_pointer("/metadata/name"), std::string());
  return ns.empty() ? name : ns + "/" + name;
}

namespace {
std::string resourceVersionOf(const json& object, const std::string& otherwise = "") {
  return object.value(json::json_pointer("/metadata/resourceVersion"), otherwise);
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

Informer::Informer(Client& client, Resource resource, InformerOptions options)
    : client_(client), resource_(std::move(resource)), options_(std::move(options)) {}

bool Informer::waitForSync(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(sync_mu_);
  return sync_cv_.wait_for(lock, timeout, [&] { return synced_.load(); });
}

ObjectPtr Informer::get(const std::string& key) const {
  std::shared_lock lock(mu_);
  auto it = store_.find(key);
  return it == store_.end() ? nullptr : it->second;
}

std::vector<ObjectPtr> Informer::list() const {
  std::shared_lock lock(mu_);
  std::vector<ObjectPtr> out;
  out.reserve(store_.size());
  for (const auto& [k, v] : store_) out.push_back(v);
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
  auto listed = client_.list(resource_, options_.namespace_,
                             {options_.label_selector, options_.field_selector, options_.page_size}, stop);
  if (!listed) {
    if (!stop.cancelled()) {
      log::warn("list failed", {{"resource", resource_.plural}, {"error", listed.error().describe()}});
    }
    return false;
  }
  std::unordered_map<std::string, ObjectPtr> fresh;
  fresh.reserve(listed->items.size());
  for (auto& item : listed->items) {
    auto obj = std::make_shared<const json>(options_.transform(std::move(item)));
    fresh.emplace(objectKey(*obj), std::move(obj));
  }
  // Swap the new contents in at once, then tell handlers what changed.
  std::unordered_map<std::string, ObjectPtr> old;
  {
    std::unique_lock lock(mu_);
    old.swap(store_);
    store_ = fresh;
    resource_version_ = listed->resource_version;
  }
  ++stats_.lists;
  for (const auto& [key, obj] : fresh) {
    auto it = old.find(key);
    ObjectPtr previous = it == old.end() ? nullptr : it->second;
    if (previous && resourceVersionOf(*previous) == resourceVersionOf(*obj)) {
      continue;
    }
    notify({InformerEvent::Type::Upsert, key, obj, previous});
  }
  for (const auto& [key, obj] : old) {
    if (!fresh.count(key)) notify({InformerEvent::Type::Delete, key, obj, nullptr});
  }
  if (!synced_.exchange(true)) {
    std::lock_guard lock(sync_mu_);
    sync_cv_.notify_all();
  }
  log::debug("listed", {{"resource", resource_.plural}, {"objects", fresh.size()}, {"resourceVersion", listed->resource_version}});
  return true;
}

void Informer::upsert(ObjectPtr object) {
  std::string key = objectKey(*object);
  ObjectPtr previous;
  {
    std::unique_lock lock(mu_);
    auto& slot = store_[key];
    previous = slot;
    slot = object;
    resource_version_ = resourceVersionOf(*object, resource_version_);
  }
  notify({InformerEvent::Type::Upsert, key, std::move(object), std::move(previous)});
}

void Informer::erase(const std::string& key, ObjectPtr last) {
  ObjectPtr known;
  {
    std::unique_lock lock(mu_);
    if (auto it = store_.find(key); it != store_.end()) {
      known = it->second;
      store_.erase(it);
    }
    resource_version_ = resourceVersionOf(*last, resource_version_);
  }
  notify({InformerEvent::Type::Delete, key, known ? known : last, nullptr});
}

Informer::WatchEnd Informer::watch(const CancelToken& stop) {
  if (!client_.throttle(stop)) return WatchEnd::Stopped;
  std::string rv = resourceVersion();
  http::Request req{http::Method::Get, watchPath() + "&resourceVersion=" + urlEncode(rv) +
                                           "&timeoutSeconds=" + std::to_string(options_.timeout_seconds.count())};
  req.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(options_.timeout_seconds + options_.idle_margin);
  WatchEnd end = WatchEnd::Closed;
  auto result = client_.rest().stream(req, [&](std::string_view line) {
    auto ev = json::parse(line, nullptr, false);
    if (!ev.is_object() || !ev.contains("object")) return true;
    std::string type = ev.value("type", "");
    auto& obj = ev["object"];
    if (type == "ERROR") {
      int code = obj.value("code", 0);
      if (code == 410) {
        end = WatchEnd::Expired;
      } else {
        log::warn("watch error", {{"resource", resource_.plural}, {"code", code}, {"message", obj.value("message", "")}});
        end = WatchEnd::Failed;
      }
      return false;
    }
    ++stats_.events;
    if (type == "BOOKMARK") {
      std::unique_lock lock(mu_);
      resource_version_ = resourceVersionOf(obj, resource_version_);
      return true;
    }
    auto stored = std::make_shared<const json>(options_.transform(std::move(obj)));
    if (type == "ADDED" || type == "MODIFIED") upsert(std::move(stored));
    else if (type == "DELETED") erase(objectKey(*stored), stored);
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
      if (!relist(stop)) {
        if (stop.waitFor(backoff)) break;
        backoff = std::min(backoff * 2, options_.backoff_max);
        continue;
      }
      need_list = false;
    }
    switch (watch(stop)) {
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
