#ifndef TASKMOE_DATA_GYM_TASKS_H_
#define TASKMOE_DATA_GYM_TASKS_H_

#include <string>
#include <vector>

#include "data/gym/gym_random.h"
#include "data/gym/skills.h"

namespace taskmoe::gym {

// Which split a task belongs to. Train tasks get large upstream files; dev and test
// tasks are held out and follow CrossFit's few-shot recipe.
enum class GymSplit { kTrain, kDev, kTest };
absl::string_view GymSplitName(GymSplit split);

// The shape of a task's random inputs (see tasks.cc for the exact ranges).
enum class InputKind {
  kWords,            // 4-10 nouns
  kManyWords,        // 8-16 nouns
  kRepeatedWords,    // 4-8 nouns drawn from 2-4 distinct ones, so repeats are common
  kDigits,           // 2-5 numbers in 0..9
  kNumbers,          // 3-6 numbers in 0..49
  kClassQuery,       // 4-8 nouns | the class name of one of them
  kWordPairs,        // 3-5 "key value" noun pairs, all nouns distinct | one key
  kNumberPairs,      // 3-5 "key number" pairs with distinct noun keys | one key
  kSpanWords,        // 5-10 nouns with a parenthesised span of 1-3 of them
  kSpanDigits,       // 4-8 numbers in 0..9 with a parenthesised span of 2-4 of them
  kPolarWords,       // 3-6 items mixing positive, negative adjectives and nouns
  kSpanPolarWords,   // polar words with a parenthesised span of 2-4 of them
};

struct GymTask {
  std::string name;          // readable, e.g. "sort-words"; never shown to the model
  // What the data calls the task (directory, file names, the "[id]" input prefix): an opaque
  // id such as "task17", so the model's input does not spell out the task's skills. Empty in
  // the fixed table; GymTasksWithIds assigns it.
  std::string id;
  std::string category;      // a CrossFit ontology category
  std::string sub_category;
  std::string metric;        // a CrossFit metric name
  GymSplit split;
  InputKind input;
  std::vector<Skill> skills;  // applied in order to the parsed input

  // Label-valued tasks use CrossFit's per-label few-shot sampling and k.
  bool IsClassification() const { return category == "classification"; }
};

// The fixed task table: train tasks first, then dev, then test.
const std::vector<GymTask>& GymTasks();

// The fixed table with opaque ids "task00".."taskNN" assigned in an order shuffled by `seed`
// (so neither a task's id nor its neighbours' ids say which skills it has).
std::vector<GymTask> GymTasksWithIds(uint64_t seed);

// A random input of the given kind.
GymState GenerateInput(InputKind kind, GymRandom& random);

}  // namespace taskmoe::gym

#endif  // TASKMOE_DATA_GYM_TASKS_H_
