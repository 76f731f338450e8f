# test_soak.sh -- the kill soak of tests/soak/soak.sh in short: extract, pretrain and finetune
# each killed with SIGKILL at 3 random moments and resumed, every result bitwise equal to an
# uninterrupted run (`make soak`: 20 kills each). The seed changes from run to run (each line
# names it; SOAK_SEED=S SOAK_N=3 make soak repeats a failure).
SOAK_N=${SOAK_TEST_N:-3} SOAK_SEED=${SOAK_SEED:-$(date +%s)} exec sh "$(dirname "$0")/../soak/soak.sh"
