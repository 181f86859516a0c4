#include "core/cuda_plugin.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace convoy {
namespace {

namespace fs = std::filesystem;

// The folders of the images that may hold this code: the program (/proc/self/exe) and, where
// this is libconvoy.so inside another program, that library.
std::vector<fs::path> ImageFolders() {
  std::vector<fs::path> folders;
  std::error_code error;
  const fs::path program = fs::read_symlink("/proc/self/exe", error);
  if (!error) folders.push_back(program.parent_path());
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&LoadCudaPlugin), &info) != 0 && info.dli_fname && *info.dli_fname) {
    const fs::path image = fs::weakly_canonical(info.dli_fname, error);
    if (!error && std::find(folders.begin(), folders.end(), image.parent_path()) == folders.end())
      folders.push_back(image.parent_path());
  }
  return folders;
}

// Whether `folder` lies inside `root`.
bool Inside(const fs::path& folder, const fs::path& root) {
  const auto [root_end, ignored] = std::mismatch(root.begin(), root.end(), folder.begin(), folder.end());
  (void)ignored;
  return root_end == root.end();
}

StatusOr<const CudaPluginApi*> Load() {
#ifndef CONVOY_HAVE_CUDA
  return Unavailable(
      "device 'cuda': this convoy was built without CUDA (nvcc was not found at configure time, or "
      "-DCONVOY_CUDA=OFF); use --device cpu");
#else
  const std::vector<std::string> candidates = CudaPluginCandidates();
  std::string searched;
  for (const std::string& path : candidates) {
    std::error_code error;
    if (!fs::exists(path, error)) {
      searched += (searched.empty() ? "" : ", ") + path;
      continue;
    }
    // RTLD_NOW: a missing CUDA library or symbol is found here, once, and not mid-run.
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle)
      return Unavailable("device 'cuda': cannot load the CUDA plug-in " + path + ": " + dlerror() +
                         " (are the CUDA Toolkit's libraries on this node, e.g. in LD_LIBRARY_PATH?); "
                         "use --device cpu");
    using Entry = const CudaPluginApi* (*)();
    auto entry = reinterpret_cast<Entry>(dlsym(handle, kCudaPluginEntry));
    const CudaPluginApi* api = entry ? entry() : nullptr;
    if (!api)
      return Unavailable("device 'cuda': " + path + " is not a convoy CUDA plug-in (no " + kCudaPluginEntry + ")");
    if (api->abi != kCudaPluginAbi || std::string(api->version) != CONVOY_VERSION)
      return Unavailable("device 'cuda': the CUDA plug-in " + path + " is from convoy " + api->version +
                         " (plug-in ABI " + std::to_string(api->abi) + "), this program is convoy " + CONVOY_VERSION +
                         " (ABI " + std::to_string(kCudaPluginAbi) + "); install both from one build");
    return api;  // the handle stays open for the life of the process
  }
  return Unavailable("device 'cuda': the CUDA plug-in " + std::string(kCudaPluginFile) + " was not found (searched " +
                     searched + "); install it with convoy, or point CONVOY_CUDA_PLUGIN at it; use --device cpu");
#endif
}

}  // namespace

std::vector<std::string> CudaPluginCandidates() {
  if (const char* chosen = std::getenv("CONVOY_CUDA_PLUGIN"); chosen && *chosen) return {chosen};
  std::vector<std::string> candidates;
  for (const fs::path& folder : ImageFolders()) {
    candidates.push_back((folder / kCudaPluginFile).string());             // build tree, or a copied folder
    candidates.push_back((folder / "convoy" / kCudaPluginFile).string());  // beside libconvoy.so
    candidates.push_back(
        (folder / ".." / CONVOY_INSTALL_LIBDIR / "convoy" / kCudaPluginFile).lexically_normal().string());
    // Test programs live in build/tests/; the plug-in they were built with is in build/.
    if (Inside(folder, CONVOY_BUILD_DIR)) candidates.push_back((fs::path(CONVOY_BUILD_DIR) / kCudaPluginFile).string());
  }
  std::vector<std::string> distinct;
  for (std::string& path : candidates)
    if (std::find(distinct.begin(), distinct.end(), path) == distinct.end()) distinct.push_back(std::move(path));
  return distinct;
}

StatusOr<const CudaPluginApi*> LoadCudaPlugin() {
  static const StatusOr<const CudaPluginApi*> loaded = Load();
  return loaded;
}

}  // namespace convoy
