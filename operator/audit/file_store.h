// The default backend: segment files in a directory (segment.h has the layout), appended to with
// one write and one fdatasync per batch. Creating a segment also fsyncs the directory. A lock file
// (flock) keeps a second writer out of the directory.
#pragma once

#include <string>

#include "operator/audit/store.h"

namespace paddock::audit {

class FileStore final : public Backend {
 public:
  FileStore(std::string dir, int64_t max_segment_bytes) : dir_(std::move(dir)), max_bytes_(max_segment_bytes) {}
  ~FileStore() override;
  FileStore(const FileStore&) = delete;
  FileStore& operator=(const FileStore&) = delete;

  // Creates the directory and its first segment when missing. Otherwise continues the last
  // segment: a torn last line is cut off (the result's repair says what was cut).
  Result<Opened> open() override;
  Status write(const std::vector<Record>& records) override;
  Status read(const ItemSink& sink) override;
  std::string describe() const override { return "dir " + dir_; }

 private:
  // Starts segment-<prev.seq+1>.jsonl with its header, durably, and makes it the current one.
  Status startSegment(const Head& prev);

  std::string dir_;
  int64_t max_bytes_;
  int lock_fd_ = -1;
  int fd_ = -1;        // the current (last) segment
  int64_t size_ = 0;   // its durable size: where the next batch goes
  Head head_;          // the last durable record
};

// Reads every segment of `dir` in order: its header, then each line.
Status readDirectory(const std::string& dir, const ItemSink& sink);

}  // namespace paddock::audit
