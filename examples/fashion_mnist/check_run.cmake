# ctest helper: runs COMMAND (arguments separated by "|") and checks both its exit status
# (EXPECT = success or failure) and that its output matches REGEX. ctest's own properties check
# only one of the two (PASS_REGULAR_EXPRESSION ignores the status, WILL_FAIL the message).
#   cmake -DCOMMAND="prog|--flag|value" -DEXPECT=failure -DREGEX="message" -P check_run.cmake
string(REPLACE "|" ";" command "${COMMAND}")
execute_process(COMMAND ${command} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(EXPECT STREQUAL "failure" AND status EQUAL 0)
  message(FATAL_ERROR "expected a non-zero exit status, got 0")
elseif(EXPECT STREQUAL "success" AND NOT status EQUAL 0)
  message(FATAL_ERROR "expected exit status 0, got ${status}")
endif()
if(NOT "${out}${err}" MATCHES "${REGEX}")
  message(FATAL_ERROR "the output does not match: ${REGEX}")
endif()
