// What a user gets wrong in nets and solvers is reported with the file, line, field or layer.
#include <gtest/gtest.h>

#include <tuple>

#include "core/net.h"
#include "core/text_format.h"
#include "tests/data_fixtures.h"
#include "tests/test_util.h"

namespace convoy {
namespace {

StatusOr<std::unique_ptr<Net>> BuildFromText(const std::string& text) {
  proto::NetSpec spec;
  RETURN_IF_ERROR(ParseTextProto(text, "net.prototxt", &spec));
  return Net::Build(spec, CpuBackend(), 4, 1);
}

TEST(ConfigErrorsTest, TypoInAFieldNamesFileLineColumnAndField) {
  proto::NetSpec spec;
  const Status s =
      ParseTextProto("name: \"n\"\nlayer {\n  name: \"a\"\n  botom: \"x\"\n}\n", "configs/net.prototxt", &spec);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.ExitCode(), 2);
  EXPECT_NE(s.message().find("configs/net.prototxt:4:"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("botom"), std::string::npos) << s.message();
}

TEST(ConfigErrorsTest, UnknownLayerTypeListsKnownTypes) {
  const std::string text = testing::Replace(testing::SmallNetText(), "\"Pooling\"", "\"Poolin\"");
  auto net = BuildFromText(text);
  ASSERT_FALSE(net.ok());
  EXPECT_NE(net.status().message().find("unknown type 'Poolin'"), std::string::npos) << net.status().message();
  EXPECT_NE(net.status().message().find("Pooling"), std::string::npos);
  EXPECT_NE(net.status().message().find("Convolution"), std::string::npos);
}

TEST(ConfigErrorsTest, MissingBlobNamesLayerAndKnownBlobs) {
  const std::string text = testing::Replace(testing::SmallNetText(), "bottom: \"pool1\"", "bottom: \"pool9\"");
  auto net = BuildFromText(text);
  ASSERT_FALSE(net.ok());
  EXPECT_NE(net.status().message().find("'ip1'"), std::string::npos) << net.status().message();
  EXPECT_NE(net.status().message().find("'pool9'"), std::string::npos);
  EXPECT_NE(net.status().message().find("pool1"), std::string::npos);
}

TEST(ConfigErrorsTest, KernelLargerThanInputIsAShapeError) {
  const std::string text = testing::Replace(testing::SmallNetText(), "kernel_size: 5", "kernel_size: 31");
  auto net = BuildFromText(text);
  ASSERT_FALSE(net.ok());
  EXPECT_NE(net.status().message().find("'conv1'"), std::string::npos) << net.status().message();
  EXPECT_NE(net.status().message().find("4x1x28x28"), std::string::npos) << net.status().message();
}

TEST(ConfigErrorsTest, StrideZeroNamesTheLayerAndField) {
  for (const auto& [from, to, what] : {std::tuple{"kernel_size: 5", "kernel_size: 5 stride: 0",
                                                  "layer 'conv1' (Convolution): convolution_param.stride"},
                                       std::tuple{"kernel_size: 2 stride: 2", "kernel_size: 2 stride: 0",
                                                  "layer 'pool1' (Pooling): pooling_param.stride"}}) {
    auto net = BuildFromText(testing::Replace(testing::SmallNetText(), from, to));
    ASSERT_FALSE(net.ok()) << to;
    EXPECT_EQ(net.status().ExitCode(), 2);
    EXPECT_NE(net.status().message().find(std::string(what) + " must be set and positive, found 0"), std::string::npos)
        << net.status().message();
  }
}

TEST(ConfigErrorsTest, WrongNumberOfBottoms) {
  const std::string text = testing::Replace(testing::SmallNetText(), "bottom: \"ip2\" bottom: \"label\" top: \"loss\"",
                                            "bottom: \"ip2\" top: \"loss\"");
  auto net = BuildFromText(text);
  ASSERT_FALSE(net.ok());
  EXPECT_NE(net.status().message().find("takes 2 bottom blobs, found 1"), std::string::npos) << net.status().message();
}

TEST(ConfigErrorsTest, CropPaddingAsLargeAsTheImage) {
  const std::string text = testing::Replace(testing::SmallNetText(), "width: 28 }", "width: 28 crop_pad: 28 }");
  auto net = BuildFromText(text);
  ASSERT_FALSE(net.ok());
  EXPECT_NE(net.status().message().find("layer 'data' (Data): data_param.crop_pad (28) must be smaller than the "
                                        "image's height and width (28x28)"),
            std::string::npos)
      << net.status().message();
}

TEST(ConfigErrorsTest, BadBatchNormAndEltwiseSettings) {
  const std::string bn = testing::Replace(testing::SmallNetText(), "layer { name: \"relu1\"",
                                          "layer { name: \"bn\" type: \"BatchNorm\" bottom: \"conv1\" top: \"b\" "
                                          "batch_norm_param { eps: 0 } }\nlayer { name: \"relu1\"");
  auto net = BuildFromText(bn);
  ASSERT_FALSE(net.ok());
  EXPECT_NE(net.status().message().find("layer 'bn' (BatchNorm): batch_norm_param.eps must be positive"),
            std::string::npos)
      << net.status().message();
  const std::string sum =
      testing::Replace(testing::SmallNetText(), "layer { name: \"relu1\"",
                       "layer { name: \"sum\" type: \"Eltwise\" bottom: \"conv1\" bottom: \"conv1\" "
                       "top: \"s\" eltwise_param { coeff: 1 } }\nlayer { name: \"relu1\"");
  net = BuildFromText(sum);
  ASSERT_FALSE(net.ok());
  EXPECT_NE(net.status().message().find("eltwise_param.coeff gives 1 coefficients for 2 bottoms"), std::string::npos)
      << net.status().message();
}

TEST(ConfigErrorsTest, ValidNetBuildsWithFusedRelus) {
  auto net = BuildFromText(testing::SmallNetText());
  ASSERT_TRUE(net.ok()) << net.status().message();
  EXPECT_EQ((*net)->num_outputs(), 10);
  EXPECT_EQ((*net)->loss_blob(), "loss");
}

}  // namespace
}  // namespace convoy
