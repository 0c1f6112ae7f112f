#ifndef TASKMOE_MOE_BASE_REGISTRY_H_
#define TASKMOE_MOE_BASE_REGISTRY_H_

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/any.pb.h"

namespace taskmoe {

// Name -> factory table for one kind of plugin (routing strategies, task-embedding methods).
// `Interface` is the plugin base class; `Args` are what a factory receives. Plugins register
// during static initialisation (see TASKMOE_REGISTER), so their Bazel targets must be
// alwayslink; after main() starts the table is only read.
template <typename Interface, typename... Args>
class Registry {
 public:
  using Factory = std::function<absl::StatusOr<std::shared_ptr<Interface>>(Args...)>;

  // The process-wide table of this kind (constructed on first use, never destroyed, so
  // registration order across translation units does not matter).
  static Registry& Global() {
    static Registry* const registry = new Registry();
    return *registry;
  }

  absl::Status Register(const std::string& name, Factory factory) {
    if (name.empty()) return absl::InvalidArgumentError("plugin name must not be empty");
    if (!factory) return absl::InvalidArgumentError(absl::StrCat("plugin '", name, "' has no factory"));
    if (!factories_.emplace(name, std::move(factory)).second) {
      return absl::AlreadyExistsError(absl::StrCat("plugin '", name, "' is registered twice"));
    }
    return absl::OkStatus();
  }

  bool Contains(absl::string_view name) const { return factories_.count(std::string(name)) > 0; }

  // Registered names, sorted.
  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    names.reserve(factories_.size());
    for (const auto& entry : factories_) names.push_back(entry.first);
    return names;
  }

  // Runs the factory registered as `name`; an unknown name is NotFound and lists the known ones.
  absl::StatusOr<std::shared_ptr<Interface>> Create(absl::string_view name, Args... args) const {
    auto it = factories_.find(std::string(name));
    if (it == factories_.end()) {
      return absl::NotFoundError(absl::StrCat("no plugin named '", name, "' is registered; registered: ",
                                              names_or_none()));
    }
    return it->second(std::forward<Args>(args)...);
  }

 private:
  Registry() = default;

  std::string names_or_none() const {
    return factories_.empty() ? std::string("(none)") : absl::StrJoin(Names(), ", ");
  }

  std::map<std::string, Factory> factories_;
};

#define TASKMOE_REGISTRY_CONCAT_INNER(a, b) a##b
#define TASKMOE_REGISTRY_CONCAT(a, b) TASKMOE_REGISTRY_CONCAT_INNER(a, b)

// Registers `factory` under `name` in `RegistryType::Global()` at static-initialisation time;
// a duplicate name is a programmer error and stops the program. Use once per plugin, in its .cc.
#define TASKMOE_REGISTER(RegistryType, name, factory)                                        \
  static const bool TASKMOE_REGISTRY_CONCAT(taskmoe_registered_plugin_, __COUNTER__) =       \
      ::taskmoe::internal::RegisterOrDie(RegistryType::Global(), name, factory)

namespace internal {

template <typename RegistryType, typename Factory>
bool RegisterOrDie(RegistryType& registry, const std::string& name, Factory&& factory) {
  const absl::Status status = registry.Register(name, std::forward<Factory>(factory));
  if (!status.ok()) {
    // Static initialisation runs before logging is set up; abort loudly.
    std::fprintf(stderr, "TaskMoE plugin registration failed: %s\n", status.ToString().c_str());
    std::abort();
  }
  return true;
}

// A factory for plugins configured by their own protobuf message: unpacks the `Any` into
// `Params` (the message's defaults when the Any is empty), then calls
// `make(const Context&, const Params&)`. `what` names the plugin in errors, e.g.
// "routing plugin 'learned'".
template <typename Interface, typename Params, typename Context, typename Make>
std::function<absl::StatusOr<std::shared_ptr<Interface>>(const Context&,
                                                         const google::protobuf::Any&)>
TypedParamsFactory(std::string what, Make make) {
  return [what = std::move(what), make = std::move(make)](
             const Context& context,
             const google::protobuf::Any& any) -> absl::StatusOr<std::shared_ptr<Interface>> {
    Params params;
    if (!any.type_url().empty()) {
      if (!any.Is<Params>()) {
        return absl::InvalidArgumentError(absl::StrCat(what, " takes params of type ",
                                                       Params::descriptor()->full_name(),
                                                       ", but its params hold ", any.type_url()));
      }
      if (!any.UnpackTo(&params)) {
        return absl::InvalidArgumentError(absl::StrCat(
            what, ": params do not parse as ", Params::descriptor()->full_name()));
      }
    }
    return make(context, params);
  };
}

}  // namespace internal
}  // namespace taskmoe

#endif  // TASKMOE_MOE_BASE_REGISTRY_H_
