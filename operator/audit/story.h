// One run's story, told from its audit records: what was asked, what happened, who approved and
// what was spent. Pure: the records come in, the text goes out.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace paddock::audit {

// Whether a stored record is about the run NAMESPACE/NAME (any uid: a re-created run shares it).
bool isForRun(const nlohmann::json& record, std::string_view ns, std::string_view name);

// A line per record in chain order, then a summary: what was asked (RunAdmitted or RunRefused),
// approvals counted and refused with their actors, what was spent (the last "spent" in any
// record's details) and how the run ended (RunFinished).
std::string tellStory(std::string_view ns, std::string_view name, const std::vector<nlohmann::json>& records);

}  // namespace paddock::audit
