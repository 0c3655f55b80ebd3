#!/usr/bin/env bash
# The main job: sets up .venv on first use, then the training workflow on the bundled
# handwritten digits: write them as class folders, train mobilenet_v2 (alpha 0.75, 64x64) with
# TensorBoard logging into logs/, evaluate it on the validation split, predict three images,
# export it to LiteRT in float32 and in int8 (calibrated on the digits), each checked against
# the Keras model and measured on every digit, and predict with the int8 export. run.json
# records alpha, so the commands after train do not repeat it.
source "$(dirname "$0")/_venv.sh" export
run() { echo "+ keras-zoo $*"; .venv/bin/keras-zoo "$@"; }
start=$(date +%s)
run digits data/digits
W=logs/mobilenet_v2_digits
# train refuses to write over a finished run: that of an earlier job goes (an unfinished one
# resumes)
if grep -qs '"results"' $W/run.json; then echo "+ rm -r $W"; rm -r $W; fi
run train mobilenet_v2 --model-arg alpha=0.75 --data data/digits --image-size 64 --epochs 15 \
    --augment crop --lr 0.002 --out logs/mobilenet_v2_digits "$@"
run evaluate mobilenet_v2 --weights logs/mobilenet_v2_digits/best.weights.h5 \
    --data data/digits --subset validation
run predict mobilenet_v2 --weights logs/mobilenet_v2_digits/best.weights.h5 --top-k 3 \
    data/digits/0/0000.png data/digits/4/0004.png data/digits/7/0007.png
run export mobilenet_v2 $W/model.tflite --weights $W/best.weights.h5 --data data/digits
run export mobilenet_v2 $W/model_int8.tflite --weights $W/best.weights.h5 --quantize int8 \
    --calibration data/digits --data data/digits
run predict mobilenet_v2 --weights $W/model_int8.tflite --top-k 3 \
    data/digits/0/0000.png data/digits/4/0004.png data/digits/7/0007.png
echo "done in $(( $(date +%s) - start )) s; to look inside the run: .venv/bin/tensorboard --logdir logs --samples_per_plugin images=1000"
