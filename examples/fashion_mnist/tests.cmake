# The example's tests (included from CMakeLists.txt when DROPNET_BUILD_TESTS is ON).
set(_fm "$<TARGET_FILE:fashion_mnist>")
set(_check_run -P ${CMAKE_CURRENT_SOURCE_DIR}/check_run.cmake)  # after the -D definitions
set(_check_same -P ${CMAKE_CURRENT_SOURCE_DIR}/check_same.cmake)

# fashion_mnist_test(NAME <name> EXPECT success|failure REGEX <regex> ARGS <arguments...>)
function(fashion_mnist_test)
  cmake_parse_arguments(T "" "NAME;EXPECT;REGEX" "ARGS" ${ARGN})
  string(REPLACE ";" "|" args "${T_ARGS}")
  add_test(NAME fashion_mnist_${T_NAME}
           COMMAND ${CMAKE_COMMAND} "-DCOMMAND=${_fm}|${args}" -DEXPECT=${T_EXPECT}
                   "-DREGEX=${T_REGEX}" ${_check_run})
endfunction()

# Bad options: a message naming the problem and a non-zero status, before any data is read.
fashion_mnist_test(NAME cli_unknown_option EXPECT failure
                   REGEX "not expected: --no-such-option.*--help" ARGS --no-such-option)
fashion_mnist_test(NAME cli_negative_epochs EXPECT failure
                   REGEX "--epochs: Value -3 not in range" ARGS --epochs -3)
fashion_mnist_test(NAME cli_unknown_preset EXPECT failure
                   REGEX "--preset: huge not in" ARGS --preset huge)
fashion_mnist_test(NAME cli_bad_layers EXPECT failure
                   REGEX "--layers" ARGS --layers 120,abc)
fashion_mnist_test(NAME cli_dropout_out_of_range EXPECT failure
                   REGEX "--dropout: Value 1.5 not in range" ARGS --dropout 1.5)
fashion_mnist_test(NAME cli_dropout_count EXPECT failure
                   REGEX "got 2 rates for 2 hidden layers; give 1 or 3"
                   ARGS --layers 120,60 --dropout 0.1,0.2)
fashion_mnist_test(NAME cli_plot_extension EXPECT failure
                   REGEX "'curves.jpg' must end in .png or .svg" ARGS --plot curves.jpg)
fashion_mnist_test(NAME cli_mc_without_dropout EXPECT failure
                   REGEX "--mc-samples.*needs a model with dropout" ARGS --mc-samples 10)
fashion_mnist_test(NAME cli_conv_flag_on_mlp EXPECT failure
                   REGEX "--conv-rate: only applies to --preset cnn" ARGS --conv-rate 0.2)
fashion_mnist_test(NAME cli_spatial_study_on_mlp EXPECT failure
                   REGEX "--study: spatial .*needs --preset cnn" ARGS --study spatial --preset seed)
fashion_mnist_test(NAME cli_recurrent_study_on_mlp EXPECT failure
                   REGEX "--study: recurrent .*needs --preset lstm"
                   ARGS --study recurrent --preset seed)
fashion_mnist_test(NAME cli_cnn_max_norm EXPECT failure
                   REGEX "--max-norm: applies to the mlp presets" ARGS --preset cnn --max-norm 3)
fashion_mnist_test(NAME missing_data_dir EXPECT failure
                   REGEX "no train-images-idx3-ubyte.gz .nor train-images-idx3-ubyte. in '/nonexistent/fmnist'"
                   ARGS --data-dir /nonexistent/fmnist)

# Non-finite, out-of-range and wrapping numbers, and outputs that cannot be written, are refused
# before any data is read: the data directory given does not exist, so a refusal that came
# later would name it instead. They used to slip through: "--dropout nan" trained without
# dropout and exited 0, "--seed -1" wrapped to 2^64 - 1, and "--save" into a missing directory
# failed after training and testing, losing the run. Each probe: name|regex|arguments...
set(_outside ${CMAKE_CURRENT_BINARY_DIR}/no_such_dir)
foreach(_probe
    "dropout_nan|--dropout: Value nan not in range \\[0 - 0.95\\]|--dropout|nan"
    "dropout_inf_in_list|--dropout: Value inf not in range|--dropout|0.25,inf,0.4"
    "lr_inf|--lr: Value inf not in range \\(0 - inf\\)|--lr|inf"
    "lr_nan|--lr: Value nan not in range|--lr|nan"
    "weight_decay_nan|--weight-decay: Value nan not in range .0 - inf.|--weight-decay|nan"  # no lone [: it joins list items
    "momentum_nan|--momentum: Value nan not in range \\[0 - 0.999\\]|--momentum|nan"
    "l2_inf|--l2: Value inf not in range|--l2|inf"
    "max_norm_nan|--max-norm: Value nan not in range|--max-norm|nan"
    "label_smoothing_nan|--label-smoothing: Value nan not in range|--label-smoothing|nan"
    "conv_rate_nan|--conv-rate: Value nan not in range|--preset|cnn|--conv-rate|nan"
    "min_accuracy_nan|--min-accuracy: Value nan not in range \\[0 - 1\\]|--min-accuracy|nan"
    "train_limit_nan|--train-limit: Value nan not in range|--train-limit|nan"
    "trials_zero|--trials: Value 0 not in range|--search|grid|--trials|0"
    "trials_without_search|--trials: only applies with --search|--trials|4"
    "prune_below_nan|--prune-below: Value nan not in range \\[0 - 1\\]|--search|random|--prune-after|1|--prune-below|nan"
    "search_with_study|--search: runs alone: drop --study|--search|grid|--study|l2"
    "seed_negative|--seed: Value -1 not in range \\[0 - 18446744073709551615\\]|--seed|-1"
    "seed_over_64_bits|--seed: Value 18446744073709551616 not in range|--seed|18446744073709551616"
    "save_missing_dir|--save: cannot write '${_outside}/model.dnm': directory '${_outside}' does not exist|--save|${_outside}/model.dnm"
    "plot_missing_dir|--plot: cannot write '${_outside}/curves.png': directory '${_outside}' does not exist|--plot|${_outside}/curves.png"
    "history_missing_dir|--history: cannot write '${_outside}/h.csv': directory '${_outside}' does not exist|--history|${_outside}/h.csv"
    "save_to_directory|--save: cannot write '${CMAKE_CURRENT_BINARY_DIR}': it is a directory|--save|${CMAKE_CURRENT_BINARY_DIR}"
    "plot_into_proc|--plot: cannot write '/proc/curves.png': cannot create files in directory '/proc'|--plot|/proc/curves.png")
  string(REPLACE "|" ";" _probe "${_probe}")
  list(POP_FRONT _probe _name _regex)
  fashion_mnist_test(NAME cli_refuses_${_name} EXPECT failure REGEX "${_regex}"
                     ARGS --data-dir /nonexistent/fmnist ${_probe})
  set_tests_properties(fashion_mnist_cli_refuses_${_name} PROPERTIES TIMEOUT 30)
endforeach()

# The published figures (scripts/example_figures.sh, figures.txt): README.md, this example's
# README and --help quote the values of figures.txt, checked without training.
set(_figures bash ${PROJECT_SOURCE_DIR}/scripts/example_figures.sh)
add_test(NAME fashion_mnist_figures_quoted COMMAND ${_figures} quotes ${_fm})

# End to end on real data: 2,000 training images, 2 epochs, must beat chance (0.1) widely.
if(EXISTS "${FASHION_MNIST_TEST_DATA}/train-images-idx3-ubyte.gz")
  # The default run, whole (15 epochs, about 6 s of CPU): its test accuracy and CPU time must
  # stay within figures.txt's tolerances of the published ones; the slow runs are regenerated by
  # a developer (see the script).
  add_test(NAME fashion_mnist_published_figures COMMAND ${_figures} check ${_fm})
  set_tests_properties(fashion_mnist_published_figures PROPERTIES TIMEOUT 300
                       ENVIRONMENT "DROPNET_FASHION_MNIST_DIR=${FASHION_MNIST_TEST_DATA}")

  set(_small --data-dir ${FASHION_MNIST_TEST_DATA} --train-limit 2000 --progress lines)
  set(_quick ${_small} --epochs 2)
  set(_out ${CMAKE_CURRENT_BINARY_DIR}/test_output)
  file(MAKE_DIRECTORY ${_out})

  fashion_mnist_test(NAME e2e_seed EXPECT success
                     REGEX "Test: loss [0-9.]+, accuracy 0[.][6-9].*Confusion matrix.*Ankle boot"
                     ARGS ${_quick} --min-accuracy 0.6)
  # Dropout slows learning down: 5 epochs (of 2,000 images) to pass 0.6 with a margin.
  fashion_mnist_test(NAME e2e_mc_dropout EXPECT success
                     REGEX "most certain 90% .*accuracy 0[.][0-9]+.*least certain 10%"
                     ARGS ${_small} --epochs 5 --preset seed-dropout --mc-samples 5 --min-accuracy 0.6)
  fashion_mnist_test(NAME e2e_batchnorm_per_pixel EXPECT success REGEX "BatchNorm.*Test: loss"
                     ARGS ${_quick} --layers 64 --batchnorm --dropout 0.2 --normalize per-pixel
                          --optimizer sgd --lr 0.05 --schedule step --min-accuracy 0.6)

  fashion_mnist_test(NAME e2e_augment EXPECT success REGEX "random shifts up to 1 px, random flips.*Test: loss"
                     ARGS ${_small} --epochs 3 --augment-shift 1 --augment-flip --min-accuracy 0.6)

  # Same seed, same threads: the same history and test results, twice.
  string(REPLACE ";" "|" _small_args "${_small}")
  set(_dropout_run "${_fm}|${_small_args}|--preset|seed-dropout")
  add_test(NAME fashion_mnist_e2e_reproducible
           COMMAND ${CMAKE_COMMAND} "-DFIRST=${_dropout_run}|--epochs|2|--history|${_out}/run_a.csv"
                   "-DSECOND=${_dropout_run}|--epochs|2|--history|${_out}/run_b.csv" "-DLINES=Test: [^\n]*"
                   -DCSV_A=${_out}/run_a.csv -DCSV_B=${_out}/run_b.csv ${_check_same})
  # --save then --load --epochs 0 gives back the same test results.
  add_test(NAME fashion_mnist_e2e_save_load
           COMMAND ${CMAKE_COMMAND} "-DFIRST=${_dropout_run}|--epochs|2|--save|${_out}/model.dnm"
                   "-DSECOND=${_dropout_run}|--load|${_out}/model.dnm|--epochs|0"
                   "-DLINES=Test: [^\n]*" ${_check_same})

  # The cnn on 3,000 images for one epoch: about 0.77 test accuracy (seed 42), 10-15 s on one
  # busy core. Smaller validation and test sets keep the (eval-mode) passes short.
  set(_cnn --data-dir ${FASHION_MNIST_TEST_DATA} --train-limit 3000 --valid-size 2000
           --test-limit 2000 --progress lines --preset cnn)
  fashion_mnist_test(NAME e2e_cnn EXPECT success
                     REGEX "conv dropout spatial 0.1.*SpatialDropout.*Test: loss [0-9.]+, accuracy 0[.][6-9]"
                     ARGS ${_cnn} --epochs 1 --min-accuracy 0.6)
  # Weights and BatchNorm statistics round-trip; 500 images are enough to train something.
  string(REPLACE ";" "|" _cnn_args "${_cnn}")
  add_test(NAME fashion_mnist_e2e_cnn_save_load
           COMMAND ${CMAKE_COMMAND}
                   "-DFIRST=${_fm}|${_cnn_args}|--train-limit|500|--epochs|1|--save|${_out}/cnn.dnm"
                   "-DSECOND=${_fm}|${_cnn_args}|--load|${_out}/cnn.dnm|--epochs|0"
                   "-DLINES=Test: [^\n]*" ${_check_same})
  # The three conv dropout settings, one epoch of 1,000 images each.
  fashion_mnist_test(NAME e2e_study_spatial EXPECT success
                     REGEX "conv dropout none .*conv dropout standard 0.1 .*conv dropout spatial 0.1 .*Curves: "
                     ARGS --data-dir ${FASHION_MNIST_TEST_DATA} --train-limit 1000 --valid-size 1000
                          --test-limit 1000 --epochs 1 --progress lines --study spatial
                          --history ${_out}/spatial_study.csv)

  # Hyperparameter search: grid and random, 2 trials of one epoch on 1,000 images each.
  fashion_mnist_test(NAME e2e_search EXPECT success
                     REGEX "Grid search: 2 trials.*Random search: 2 trials.*search +trials +pruned +best valid.*grid +2 .*random +2 .*Trials: [^\n]*search_random[.]csv"
                     ARGS --data-dir ${FASHION_MNIST_TEST_DATA} --train-limit 1000 --valid-size 1000
                          --test-limit 1000 --epochs 1 --progress lines --search compare --trials 2
                          --history ${_out}/search.csv)
  # The L2 study (exercise 4 of the course chapter): one epoch of 1,000 images per strength.
  fashion_mnist_test(NAME e2e_study_l2 EXPECT success
                     REGEX "L2 study.*no L2 .*L2 1e-05 .*L2 0.0001 .*L2 0.001 .*Curves: "
                     ARGS --data-dir ${FASHION_MNIST_TEST_DATA} --train-limit 1000 --valid-size 1000
                          --test-limit 1000 --epochs 1 --progress lines --study l2
                          --history ${_out}/l2_study.csv)

  find_program(GNUPLOT_EXECUTABLE gnuplot)
  if(GNUPLOT_EXECUTABLE)
    fashion_mnist_test(NAME e2e_plot EXPECT success REGEX "Figure: [^\n]*curves[.](png|svg)"
                       ARGS ${_quick} --plot ${_out}/curves.png)
    fashion_mnist_test(NAME e2e_study EXPECT success
                       REGEX "best valid loss.*no dropout.*dropout 0.25/0.4/0.4.*Figure: [^\n]*study[.]svg"
                       ARGS --data-dir ${FASHION_MNIST_TEST_DATA} --train-limit 1000 --epochs 2
                            --progress lines --study dropout --plot ${_out}/study.svg)
  endif()
endif()
