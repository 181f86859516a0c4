// Every layer a source file registers is known at run time: the layers' archive is linked whole
// (core/CMakeLists.txt), so a layer is its files, with no list elsewhere to forget.
#include "core/layer_registry.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

namespace convoy {
namespace {

TEST(LayerRegistryTest, EveryRegisteredTypeInTheSourcesIsKnown) {
  const std::regex registration(R"(^CONVOY_REGISTER_LAYER\((\w+),)");
  const std::string known = ", " + LayerRegistry::Global().KnownTypes() + ",";
  int found = 0;
  for (const auto& entry : std::filesystem::directory_iterator(CONVOY_SOURCE_DIR "/core/layers")) {
    if (entry.path().extension() != ".cpp") continue;
    std::ifstream in(entry.path());
    std::string line;
    std::smatch m;
    while (std::getline(in, line))
      if (std::regex_search(line, m, registration)) {
        ++found;
        EXPECT_NE(known.find(" " + m[1].str() + ","), std::string::npos)
            << entry.path() << " registers " << m[1] << ", which the linked program does not know; known:" << known;
      }
  }
  EXPECT_GE(found, 12) << "the layers' registrations were not found under " CONVOY_SOURCE_DIR "/core/layers";
}

TEST(LayerRegistryTest, AnUnknownTypeNamesTheLayerAndListsTheKnownOnes) {
  proto::LayerSpec spec;
  spec.set_name("conv9");
  spec.set_type("Convolutoin");
  auto made = LayerRegistry::Global().Create(spec);
  ASSERT_FALSE(made.ok());
  EXPECT_NE(made.status().message().find("layer 'conv9': unknown type 'Convolutoin'"), std::string::npos);
  EXPECT_NE(made.status().message().find("Convolution, "), std::string::npos) << made.status().message();
}

}  // namespace
}  // namespace convoy
