// Whole-file reads with errno reporting.
#include "config/text_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace omnibus::config {

namespace {

// Closes the descriptor on every return path.
struct Fd {
    int fd;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace

FileContent read_text_file(const std::string& path, std::size_t max_bytes) {
    // O_NONBLOCK: opening a FIFO nobody writes to must not hang start-up.
    Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK)};
    if (f.fd < 0) return {std::nullopt, errno};
    struct stat st {};
    if (::fstat(f.fd, &st) != 0) return {std::nullopt, errno};
    if (S_ISDIR(st.st_mode)) return {std::nullopt, EISDIR};

    std::string text;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(f.fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;  // an empty FIFO: nothing to read
            return {std::nullopt, errno};
        }
        if (n == 0) break;
        if (text.size() + static_cast<std::size_t>(n) > max_bytes) return {std::nullopt, EFBIG};
        text.append(buf, static_cast<std::size_t>(n));
    }
    return {std::move(text), 0};
}

}  // namespace omnibus::config
