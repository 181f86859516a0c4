// Writes Fashion-MNIST training images as a folder of photos (a sub-folder per class, PNG and
// JPEG alternating, upscaled to SIDE x SIDE): input for the conversion benchmark and the demo
// of photo training.  Usage: make_photo_folder DIR COUNT [SIDE]
#include <cstdio>
#include <cstdlib>

#include "tests/data_fixtures.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s DIR COUNT [SIDE]\n", argv[0]);
    return 2;
  }
  const convoy::Status s =
      convoy::testing::MakeFashionPhotoFolder(argv[1], std::atoi(argv[2]), argc > 3 ? std::atoi(argv[3]) : 28);
  if (!s.ok()) {
    std::fprintf(stderr, "make_photo_folder: %s\n", s.message().c_str());
    return 2;
  }
  return 0;
}
