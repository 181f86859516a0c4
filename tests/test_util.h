// Helpers shared by convoy's tests: temporary folders, running the convoy program, and small
// real datasets cut from Fashion-MNIST.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace convoy::testing {

inline const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// A fresh folder under /tmp, removed when the object goes.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("convoy-test-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

inline void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command line, capturing its output.
inline CommandResult Run(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return result;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) result.output.append(buf, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

inline std::string ConvoyBinary() { return CONVOY_BINARY; }

// text with the first `from` replaced by `to` (from must occur).
inline std::string Replace(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

// Open MPI on this machine: as root, on loopback, more ranks than cores allowed.
inline std::string Mpirun(int ranks) {
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader "
         "OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_rmaps_base_oversubscribe=1 mpirun -np " +
         std::to_string(ranks) + " ";
}

// Processes whose environment holds every one of `entries` ("NAME=value").
inline std::vector<pid_t> FindProcessesWithEnv(const std::vector<std::string>& entries) {
  std::vector<pid_t> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string env = ReadFile(entry.path().string() + "/environ");
    std::replace(env.begin(), env.end(), '\0', '\n');
    env = "\n" + env;
    bool all = true;
    for (const std::string& e : entries) all = all && env.find("\n" + e + "\n") != std::string::npos;
    if (all) found.push_back(std::stoi(name));
  }
  return found;
}
inline std::vector<pid_t> FindProcessesWithEnv(const std::string& entry) {
  return FindProcessesWithEnv(std::vector<std::string>{entry});
}

// The pid of the process whose environment holds both `tag` and `var`, or -1.
inline pid_t FindProcessWithEnv(const std::string& tag, const std::string& var) {
  const auto found = FindProcessesWithEnv({tag, var});
  return found.empty() ? -1 : found.front();
}

// A shell command running in the background, output to a file. Every process it starts carries
// a unique CONVOY_BACKGROUND variable, so the destructor kills them all — also the ranks of an
// mpirun that was itself killed (they outlive it otherwise).
class Background {
 public:
  Background(const std::string& command, const std::string& log)
      : tag_("CONVOY_BACKGROUND=" + std::to_string(std::random_device()())) {
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      putenv(const_cast<char*>(tag_.c_str()));
      execl("/bin/sh", "sh", "-c", (command + " > " + log + " 2>&1").c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~Background() {
    if (pid_ > 0 && !done_) {
      kill(-pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    for (pid_t p : FindProcessesWithEnv(tag_)) kill(p, SIGKILL);
  }
  // The variable every process of the command carries ("CONVOY_BACKGROUND=..."), to find them.
  const std::string& tag() const { return tag_; }
  // The exit code, or -1 if still running after `seconds` (a bound against hangs, not a timing).
  int Wait(double seconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        done_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

 private:
  std::string tag_;
  pid_t pid_ = -1;
  bool done_ = false;
};

}  // namespace convoy::testing
