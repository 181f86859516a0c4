// Checkpoint files: a round trip keeps every byte (tensors larger than one 16 MiB chunk too);
// truncated, flipped and foreign files are refused by name; --resume latest falls back past a
// damaged newest checkpoint; a writer killed mid-write leaves the previous checkpoint whole.
#include "launch/checkpoint.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <thread>

#include "launch/checkpoint_file.h"
#include "tests/data_fixtures.h"
#include "tests/test_util.h"

namespace convoy {
namespace {

using testing::TempDir;

proto::Checkpoint MakeCheckpoint(uint64_t iter, int64_t floats) {
  proto::Checkpoint c;
  c.set_convoy_version("test");
  c.mutable_solver_state()->set_iter(iter);
  c.set_epoch(2);
  c.set_samples_into_epoch(640);
  for (int t = 0; t < 2; ++t) {
    std::string bytes(floats * sizeof(float), '\0');
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 131 + t + iter) & 0xff);
    auto* p = c.add_param();
    p->set_name("layer/" + std::to_string(t));
    p->add_shape(floats);
    p->set_data(bytes);
    *c.mutable_solver_state()->add_momentum() = *p;
  }
  return c;
}

TEST(CheckpointFileTest, RoundTripKeepsEveryByteAcrossChunks) {
  TempDir dir;
  const proto::Checkpoint c = MakeCheckpoint(7, (int64_t{20} << 20) / 4 + 3);  // 20 MiB + 12 bytes: two chunks
  ASSERT_TRUE(WriteCheckpointFile(dir / "c.pb", c).ok());
  auto back = ReadCheckpointFile(dir / "c.pb");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->SerializeAsString(), c.SerializeAsString());
}

TEST(CheckpointFileTest, DamagedFilesAreRefusedByName) {
  TempDir dir;
  ASSERT_TRUE(WriteCheckpointFile(dir / "c.pb", MakeCheckpoint(7, 1000)).ok());
  const std::string good = testing::ReadFile(dir / "c.pb");

  testing::WriteFile(dir / "truncated.pb", good.substr(0, good.size() / 2));
  auto r = ReadCheckpointFile(dir / "truncated.pb");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("truncated.pb: truncated"), std::string::npos) << r.status().message();

  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x10;
  testing::WriteFile(dir / "flipped.pb", flipped);
  r = ReadCheckpointFile(dir / "flipped.pb");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("flipped.pb: checksum mismatch"), std::string::npos) << r.status().message();

  testing::WriteFile(dir / "foreign.pb", "name: \"a net, not a checkpoint\"\n");
  r = ReadCheckpointFile(dir / "foreign.pb");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("foreign.pb: not a convoy checkpoint"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(r.status().ExitCode(), 2);
}

TEST(CheckpointFileTest, ResumeLatestFallsBackPastADamagedNewest) {
  TempDir dir;
  for (uint64_t iter : {10, 20, 30}) ASSERT_TRUE(SaveCheckpoint(dir.str(), MakeCheckpoint(iter, 100), 5).ok());
  const std::string newest = dir / "checkpoints/ckpt-30.pb";
  const std::string bytes = testing::ReadFile(newest);
  testing::WriteFile(newest, bytes.substr(0, bytes.size() - 9));
  const std::string second = dir / "checkpoints/ckpt-20.pb";
  std::string flipped = testing::ReadFile(second);
  flipped[40] ^= 1;
  testing::WriteFile(second, flipped);
  std::string notes;
  auto point = FindResumePoint(dir.str(), "latest", &notes);
  ASSERT_TRUE(point.ok()) << point.status().message();
  EXPECT_EQ(point->checkpoint.solver_state().iter(), 10u);
  EXPECT_NE(notes.find("ckpt-30.pb: truncated"), std::string::npos) << notes;
  EXPECT_NE(notes.find("ckpt-20.pb: checksum mismatch"), std::string::npos) << notes;
  EXPECT_EQ(testing::ReadFile(newest).size(), bytes.size() - 9) << "a damaged checkpoint must not be overwritten";
}

TEST(CheckpointFileTest, KeepsTheNewestK) {
  TempDir dir;
  for (uint64_t iter = 1; iter <= 6; ++iter) ASSERT_TRUE(SaveCheckpoint(dir.str(), MakeCheckpoint(iter, 10), 2).ok());
  EXPECT_FALSE(std::filesystem::exists(dir / "checkpoints/ckpt-4.pb"));
  EXPECT_TRUE(std::filesystem::exists(dir / "checkpoints/ckpt-5.pb"));
  EXPECT_EQ(testing::ReadFile(dir / "checkpoints/latest"), "ckpt-6.pb\n");
}

// A real writer killed at arbitrary instants: whatever it was doing, latest names a whole
// checkpoint, and every checkpoint file present loads.
TEST(CheckpointFileTest, AWriterKilledMidWriteLeavesThePreviousCheckpointWhole) {
  TempDir dir;
  ASSERT_TRUE(testing::MakeFashionMnistDataset(dir / "train", 256, 1).ok());
  testing::WriteFile(dir / "net.prototxt", testing::SmallNetText());
  testing::WriteFile(dir / "solver.prototxt",
                     "net: \"net.prototxt\"\ntrain_data: \"train\"\nbatch_size: 8\nmax_iter: 1000000\n"
                     "snapshot: 1\nkeep_checkpoints: 3\ndisplay: 1000\n");
  std::mt19937 rng(std::random_device{}());
  for (int kill_round = 0; kill_round < 4; ++kill_round) {
    testing::Background job(testing::ConvoyBinary() + " train --solver " + (dir / "solver.prototxt") + " --run-dir " +
                                (dir / "run") + (kill_round ? " --resume latest" : ""),
                            dir / "job.log");
    for (int i = 0; i < 100 && !std::filesystem::exists(dir / "run/checkpoints/latest"); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::this_thread::sleep_for(std::chrono::milliseconds(200 + rng() % 300));
    ASSERT_EQ(job.Wait(0), -1) << "the job ended early:\n" << testing::ReadFile(dir / "job.log");
  }  // ~Background kills the job with SIGKILL, wherever it is
  std::string name = testing::ReadFile(dir / "run/checkpoints/latest");
  ASSERT_FALSE(name.empty());
  name.pop_back();
  auto latest = LoadCheckpoint(dir / "run/checkpoints/" + name);
  ASSERT_TRUE(latest.ok()) << latest.status().message();
  EXPECT_GT(latest->solver_state().iter(), 0u);
  for (const auto& entry : std::filesystem::directory_iterator(dir / "run/checkpoints"))
    if (entry.path().extension() == ".pb") {
      auto c = LoadCheckpoint(entry.path().string());
      EXPECT_TRUE(c.ok()) << c.status().message();
    }
  // The next save clears what killed writers left behind.
  ASSERT_TRUE(SaveCheckpoint(dir / "run", *latest, 3).ok());
  for (const auto& entry : std::filesystem::directory_iterator(dir / "run/checkpoints"))
    EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos) << entry.path();
}

}  // namespace
}  // namespace convoy
