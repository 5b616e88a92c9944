// A child process for integration tests: started with arguments and extra
// environment, its stdout and stderr captured to a file the test can read
// while it runs, stopped with a signal and waited for with a deadline.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace omnibus::test {

class Process {
public:
    Process(std::vector<std::string> argv, std::vector<std::string> env = {}, std::string output_file = {})
        : output_(output_file.empty() ? temp_name() : std::move(output_file)) {
        int fd = ::open(output_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0) throw std::runtime_error("cannot create " + output_);
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            ::close(fd);
            // Signals blocked in the test runner must not stay blocked in the child.
            sigset_t none;
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, nullptr);
            for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
            std::vector<char*> args;
            for (auto& a : argv) args.push_back(a.data());
            args.push_back(nullptr);
            ::execv(args[0], args.data());
            std::perror("execv");
            ::_exit(127);
        }
        ::close(fd);
    }
    ~Process() {
        if (running()) {
            ::kill(pid_, SIGKILL);
            wait_exit(std::chrono::seconds(5));
        }
        ::unlink(output_.c_str());
    }
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    pid_t pid() const { return pid_; }
    void signal(int sig) const { ::kill(pid_, sig); }

    bool running() {
        if (exited_) return false;
        int status = 0;
        pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) record(status);
        return !exited_;
    }

    // Waits until the process exits; returns false when it is still running at the deadline.
    bool wait_exit(std::chrono::milliseconds timeout) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (running()) {
            if (std::chrono::steady_clock::now() >= deadline) return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        return true;
    }
    // Exit code, or 128 + signal when killed by a signal.
    int exit_code() const { return exit_code_; }

    std::string output() const {
        std::ifstream in(output_);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }

private:
    static std::string temp_name() {
        char tmpl[] = "/tmp/omnibus-test-XXXXXX";
        int fd = ::mkstemp(tmpl);
        if (fd < 0) throw std::runtime_error("mkstemp failed");
        ::close(fd);
        return tmpl;
    }
    void record(int status) {
        exited_ = true;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }

    std::string output_;
    pid_t pid_ = -1;
    bool exited_ = false;
    int exit_code_ = -1;
};

// Runs a command to completion and returns its stdout (for kcat and the like).
inline std::string run_capture(const std::string& command, int* exit_status = nullptr) {
    std::string out;
    FILE* p = ::popen(command.c_str(), "r");
    if (!p) throw std::runtime_error("popen failed: " + command);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int st = ::pclose(p);
    if (exit_status) *exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

}  // namespace omnibus::test
