#ifndef TASKMOE_TESTS_FREE_PORT_H_
#define TASKMOE_TESTS_FREE_PORT_H_

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "glog/logging.h"

namespace taskmoe::testing {

// A port that was free a moment ago on 127.0.0.1 (the kernel picks it), for the TCP store of a
// multi-process test.
inline int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  CHECK_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  socklen_t length = sizeof(address);
  CHECK_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  close(fd);
  return ntohs(address.sin_port);
}

}  // namespace taskmoe::testing

#endif  // TASKMOE_TESTS_FREE_PORT_H_
