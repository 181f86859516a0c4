// Seconds as "H:MM:SS", for ETAs in progress lines.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

namespace convoy {

inline std::string Hms(double seconds) {
  const long s = std::lround(std::max(seconds, 0.0));
  char text[32];
  std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  return text;
}

}  // namespace convoy
