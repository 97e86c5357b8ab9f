// Replacing a file so that a crash at any moment leaves either the old contents or the
// new ones, never a mix: write a temporary next to it, fsync it, rename it over the
// file, fsync the directory (the rename is durable only once the directory entry is).
// Used for every file the learning side writes that a reader must be able to trust
// (model.safetensors, config.json, adapter_config.json).
#pragma once

#include <cstddef>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace kaizen::model {

// An I/O failure of atomic_write_file or fsync_dir. The message names the file, the
// step that failed and the errno text, e.g. "/m/config.json: fsync of
// /m/config.json.tmp-4242-0 failed: No space left on device".
struct DurableFileError : std::runtime_error {
  explicit DurableFileError(const std::string& what, int err = 0)
      : std::runtime_error(what), error(err) {}
  int error = 0;  // errno of the call that failed (ENOSPC: the disk is full)
};

// The temporary file a writer callback of atomic_write_file fills. Not copyable; valid
// only during the callback.
class PendingFile {
 public:
  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;

  // Appends n bytes (retrying short writes and EINTR). Throws DurableFileError.
  void write(const void* data, size_t n);
  void write(std::string_view text) { write(text.data(), text.size()); }
  // The temporary's path (`<path>.tmp-<pid>-<n>`).
  const std::string& path() const { return tmp_path_; }

 private:
  friend void atomic_write_file(const std::string&, const std::function<void(PendingFile&)>&);
  PendingFile(int fd, std::string target, std::string tmp_path)
      : fd_(fd), target_(std::move(target)), tmp_path_(std::move(tmp_path)) {}

  int fd_;
  std::string target_;  // the file being replaced, for error messages
  std::string tmp_path_;
};

// Replaces `path` with what `writer` writes: creates `<path>.tmp-<pid>-<n>` in the same
// directory (n counts calls in this process, so two threads never share a temporary),
// runs writer on it, fsyncs and closes it, renames it over `path`, fsyncs the directory.
// New files get mode 0666 & ~umask.
// On failure before the rename the temporary is removed and `path` is untouched. An
// exception thrown by `writer` propagates unchanged; an I/O failure throws
// DurableFileError. If only the final directory fsync fails, `path` already holds the
// new contents (its durability is then unknown) and DurableFileError is still thrown.
// Thread-safe; of concurrent writers of one path, the last rename wins (never a mix).
void atomic_write_file(const std::string& path, const std::function<void(PendingFile&)>& writer);
// The same with the whole contents in hand.
void atomic_write_file(const std::string& path, std::string_view contents);

// fsyncs directory `dir` ("" = the current directory), making renames and creations
// inside it durable. Throws DurableFileError naming the directory.
void fsync_dir(const std::string& dir);

}  // namespace kaizen::model
