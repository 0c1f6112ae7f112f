#ifndef TASKMOE_MOE_DRAWING_RGB_H_
#define TASKMOE_MOE_DRAWING_RGB_H_

#include <cstdint>

namespace taskmoe {

// An opaque colour, 8 bits per channel.
struct Rgb {
  uint8_t r = 0;
  uint8_t g = 0;
  uint8_t b = 0;
  bool operator==(const Rgb& other) const {
    return r == other.r && g == other.g && b == other.b;
  }
};

}  // namespace taskmoe

#endif  // TASKMOE_MOE_DRAWING_RGB_H_
