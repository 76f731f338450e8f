# test_interop.sh -- export / import in the official I2P-MAE names and encode (docs/interop.md):
#  - ours -> official safetensors -> the PyTorch module under the official names loads it with
#    strict=True and its SVM-path features equal `i2pmae encode`'s (tests/ref/official_names_ref.py);
#  - import of that export: the same features, svm takes it, export again gives the same tensors;
#    the decoder of the import equals the official decoder ([skip | interpolated]) and would not
#    without the column swap;
#  - PyTorch (official names, 'module.' prefix, a CLIP tensor) -> .pth -> pth2safetensors ->
#    import -> encode equals the PyTorch features; safetensors2pth -> pth2safetensors round trip;
#  - the same at the spec's configuration with no model options (import reads it off the shapes);
#  - encode is the same on 1 and 2 ranks; --tokens; resume from a partial file;
#  - bad input: truncated file, duplicate names, wrong shape, missing / unexpected tensor,
#    Point-MAE checkpoint, a pre-training file with a fine-tuning head; a 'module.' prefix is accepted;
#  - pretrain --init: from an import and from our checkpoint, the parameters at step 0 are the
#    checkpoint's (lr 0 for one step leaves them unchanged, bitwise) and both runs' first losses are
#    the same and differ from a run without --init; recorded as config 'init'; errors: --resume,
#    another architecture (a tensor's shape; heads), a fine-tuning checkpoint; no run directory left;
#  - fine-tuning checkpoints: export of finetune's best.h5 loads strictly into the official
#    fine-tuning model (names, shapes, BN buffers); import (from the metadata, and from the shapes
#    alone with 'module.' prefixes) gives back the same /params and /buffers, and --eval-only gives
#    the same accuracy as on best.h5.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pretrain_lib.sh"
if ! have_torch; then skip interop "python3 torch / h5py / numpy missing (tests/ref/official_names_ref.py)"; exit 0; fi
REF="$ROOT/tests/ref/official_names_ref.py"
TOOLS="$ROOT/tools"

check synth "$I2PMAE" synth --samples 24 --points 128 --seed 5 -o "$T/tr.h5"
check features make_features "$T/tr.h5" "$T/f.h5"
check pretrain mpi 2 "$I2PMAE" pretrain --config "$TINY" --data "$T/tr.h5" --features "$T/f.h5" \
  -o "$T/run" --batch 8 --steps 3
CK="$T/run/ckpt-00000003.h5"

# ---- ours -> official ----
mpi 2 "$I2PMAE" export --checkpoint "$CK" --format official -o "$T/a.safetensors" > "$T/export.out" 2>&1
check export_json grep -q '^{.*"command":"export".*"tensors":163,"params":94492,"step":3' "$T/export.out"
check encode_np1 "$I2PMAE" encode --checkpoint "$CK" --input "$T/tr.h5" -o "$T/e1.h5" --tokens --batch 5
check encode_np2 mpi 2 "$I2PMAE" encode --checkpoint "$CK" --input "$T/tr.h5" -o "$T/e2.h5" --tokens --batch 5
check encode_same_on_1_and_2_ranks $PY -c "
import h5py, numpy as np, sys
a, b = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
for k in ('global_max', 'global_mean', 'label', 'tokens', 'centres'):
    assert np.array_equal(a[k][:], b[k][:]), k
assert a['tokens'].shape == (24, 8, 48) and a['centres'].shape == (24, 8, 3)
assert np.allclose(a['tokens'][:].max(1), a['global_max'][:]) and np.allclose(a['tokens'][:].mean(1), a['global_mean'][:], atol=1e-6)
" "$T/e1.h5" "$T/e2.h5"
# resume: a partial file with the first 10 samples done is completed to the same file
cp "$T/e1.h5" "$T/r.h5.partial"
$PY -c "
import h5py, sys
f = h5py.File(sys.argv[1], 'r+')
f['done'][10:] = 0
for k in ('global_max', 'global_mean', 'tokens', 'centres'):
    f[k][10:] = 0
" "$T/r.h5.partial"
mpi 2 "$I2PMAE" encode --checkpoint "$CK" --input "$T/tr.h5" -o "$T/r.h5" --tokens --batch 5 > "$T/resume.out" 2>&1
check encode_resume_json grep -q '"resumed_samples":10' "$T/resume.out"
check encode_resume_same_file $PY -c "
import h5py, numpy as np, sys
a, b = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
for k in ('global_max', 'global_mean', 'label', 'tokens', 'centres', 'done'):
    assert np.array_equal(a[k][:], b[k][:]), k
" "$T/e1.h5" "$T/r.h5"
cp "$T/e1.h5" "$T/s.h5.partial"
expect_error encode_partial_of_another_run "s.h5.partial: left by another run" \
  $MPIRUN 2 "$I2PMAE" encode --checkpoint "$CK" --input "$T/tr.h5" -o "$T/s.h5"
check encode_partial_of_another_run_kept test -f "$T/s.h5.partial"
expect_error encode_output_exists "e1.h5: exists (use --force to replace it)" \
  "$I2PMAE" encode --checkpoint "$CK" --input "$T/tr.h5" -o "$T/e1.h5" --tokens
check official_strict_load_same_features $PY "$REF" check-export "$T/a.safetensors" "$T/tr.h5" "$T/e1.h5"

# ---- official -> ours ----
mpi 2 "$I2PMAE" import --input "$T/a.safetensors" -o "$T/b.h5" > "$T/import.out" 2>&1
check import_json grep -q '^{.*"command":"import".*"tensors":154,"params":94492.*"config_from":"metadata"' "$T/import.out"
check import_encode "$I2PMAE" encode --checkpoint "$T/b.h5" --input "$T/tr.h5" -o "$T/eb.h5"
check import_same_features $PY -c "
import h5py, numpy as np, sys
a, b = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
assert np.array_equal(a['global_max'][:], b['global_max'][:]) and np.array_equal(a['global_mean'][:], b['global_mean'][:])
" "$T/e1.h5" "$T/eb.h5"
check import_decoder_fusion_order $PY "$REF" check-decoder "$T/a.safetensors" "$T/b.h5"
check svm_takes_import "$I2PMAE" svm --config "$TINY" --data "$T/tr.h5" --test "$T/tr.h5" --checkpoint "$T/b.h5"
check export_of_import "$I2PMAE" export --checkpoint "$T/b.h5" --format official -o "$T/c.safetensors"
check export_import_export_same_tensors $PY -c "
import sys; sys.path.insert(0, sys.argv[3])
import st_format, torch
a, b = st_format.read(sys.argv[1])[0], st_format.read(sys.argv[2])[0]
assert a.keys() == b.keys()
for k in a:
    assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
    assert torch.equal(a[k], b[k]) or k.endswith('num_batches_tracked'), k
" "$T/a.safetensors" "$T/c.safetensors" "$TOOLS"

# ---- PyTorch -> .pth -> safetensors -> import -> encode ----
CJ='{"points":128,"groups":[32,16,8],"k":[8,4,4],"dims":[12,24,48],"depths":[1,1,1],"heads":2,"dec_depths":[1,1],"embed_hidden":[8,16,32],"views":3,"feat_dim":6}'
check torch_make_pth $PY "$REF" make "$T/p.pth" "$T/tr.h5" "$T/expected.h5" --config-json "$CJ"
$PY "$TOOLS/pth2safetensors.py" "$T/p.pth" "$T/p.safetensors" > "$T/p2s.out" 2>&1
check pth2safetensors_safe_load_refuses_floats grep -q 'run again with --trusted' "$T/p2s.out"
check pth2safetensors $PY "$TOOLS/pth2safetensors.py" --trusted "$T/p.pth" "$T/p.safetensors"
"$I2PMAE" import --input "$T/p.safetensors" -o "$T/p.h5" --config "$TINY" > "$T/pimport.out" 2>&1
check import_official_lists_clip grep -q 'ignored 1 CLIP tensors (clip_model\.\*)' "$T/pimport.out"
check import_official_json grep -q '"config_from":"shapes and defaults"' "$T/pimport.out"
check encode_official "$I2PMAE" encode --checkpoint "$T/p.h5" --input "$T/tr.h5" -o "$T/pe.h5"
check official_features_equal_pytorch $PY "$REF" compare "$T/pe.h5" "$T/expected.h5"
# the spec's configuration, no model options: import reads it off the shapes (295 tensors + CLIP)
check synth_spec "$I2PMAE" synth --samples 2 --points 2048 --seed 3 -o "$T/spec.h5"
check torch_make_pth_spec $PY "$REF" make "$T/s.pth" "$T/spec.h5" "$T/s_expected.h5" --config-json '{"base": "spec"}'
check pth2safetensors_spec $PY "$TOOLS/pth2safetensors.py" --trusted "$T/s.pth" "$T/s.safetensors"
"$I2PMAE" import --input "$T/s.safetensors" -o "$T/s.h5" > "$T/simport.out" 2>&1
check import_spec_no_options grep -q '"tensors":286,"params":17622808,"ignored_clip_tensors":1' "$T/simport.out"
check encode_spec "$I2PMAE" encode --checkpoint "$T/s.h5" --input "$T/spec.h5" -o "$T/se.h5"
check official_spec_features_equal_pytorch $PY "$REF" compare "$T/se.h5" "$T/s_expected.h5"
check safetensors2pth $PY "$TOOLS/safetensors2pth.py" "$T/a.safetensors" "$T/a.pth"
check pth2safetensors_weights_only $PY "$TOOLS/pth2safetensors.py" "$T/a.pth" "$T/a2.safetensors"
check pth_round_trip_same_features sh -c "\"$I2PMAE\" import --input \"$T/a2.safetensors\" -o \"$T/a2.h5\" --config \"$TINY\" && \"$I2PMAE\" encode --checkpoint \"$T/a2.h5\" --input \"$T/tr.h5\" -o \"$T/ea2.h5\" && $PY \"$REF\" compare \"$T/ea2.h5\" \"$T/e1.h5\""

# ---- bad input ----
kinds=truncated,duplicate,shape,missing,unexpected,module,finetune,pointmae
$PY "$REF" bad $kinds "$T/a.safetensors" "$T/bad_{}.safetensors" || fail make_bad "official_names_ref.py bad $kinds"
expect_error import_truncated "bad_truncated.safetensors: tensor .* run past the end of the data" \
  "$I2PMAE" import --input "$T/bad_truncated.safetensors" -o "$T/x.h5" --config "$TINY"
expect_error import_duplicate "tensor decoder_norm.bias appears twice in the header" \
  $MPIRUN 2 "$I2PMAE" import --input "$T/bad_duplicate.safetensors" -o "$T/x.h5" --config "$TINY"
expect_error import_wrong_shape "tensor h_encoder.token_embed.0.first_conv.0.weight has shape \[8, 3\], expected \[8, 3, 1\]" \
  $MPIRUN 2 "$I2PMAE" import --input "$T/bad_shape.safetensors" -o "$T/x.h5" --config "$TINY"
expect_error import_missing "tensor h_encoder.encoder_norms.1.weight is missing" \
  "$I2PMAE" import --input "$T/bad_missing.safetensors" -o "$T/x.h5" --config "$TINY"
expect_error import_unexpected "unexpected tensor h_encoder.encoder_blocks.0.blocks.9.norm1.weight" \
  "$I2PMAE" import --input "$T/bad_unexpected.safetensors" -o "$T/x.h5" --config "$TINY"
expect_error import_finetune_head_on_pretrain "unexpected tensor h_encoder.encoder_norms.0.weight" \
  "$I2PMAE" import --input "$T/bad_finetune.safetensors" -o "$T/x.h5" --config "$TINY"
expect_error import_point_mae "Point-MAE (non-hierarchical, MAE_encoder.\*) checkpoint" \
  "$I2PMAE" import --input "$T/bad_pointmae.safetensors" -o "$T/x.h5"
no_file import_bad_writes_nothing "$T/x.h5"
"$I2PMAE" import --input "$T/bad_module.safetensors" -o "$T/m.h5" --config "$TINY" > "$T/module.out" 2>&1
check import_module_prefix grep -q '"ignored_clip_tensors":1,"module_prefix":true' "$T/module.out"
expect_error import_heads_from_options "heads 5 must divide" \
  "$I2PMAE" import --input "$T/p.safetensors" -o "$T/x.h5" --config "$TINY" --heads 5
expect_error export_not_pretrain "not an i2pmae checkpoint" \
  "$I2PMAE" export --checkpoint "$T/f.h5" --format official -o "$T/x.safetensors"
expect_error export_format "--format onnx: only 'official' is known" \
  "$I2PMAE" export --checkpoint "$CK" --format onnx -o "$T/x.safetensors"
expect_error encode_other_config "configuration differs: 'dims'" \
  "$I2PMAE" encode --checkpoint "$CK" --input "$T/tr.h5" -o "$T/x.h5" --dims 16,32,64

# ---- pretrain --init ----
INIT="--config $TINY --data $T/tr.h5 --features $T/f.h5 --batch 8 --steps 1 --warmup-lr 0 --weight-decay 0"
mpi 2 "$I2PMAE" pretrain $INIT -o "$T/init_imp" --init "$T/b.h5" > "$T/init_imp.out" 2>&1
check init_json grep -q '"resumed":false,"init":".*b.h5","start_step":0,"end_step":1' "$T/init_imp.out"
check init_ours mpi 2 "$I2PMAE" pretrain $INIT -o "$T/init_ours" --init "$CK"
check init_none "$I2PMAE" pretrain $INIT -o "$T/init_none"
check init_params_at_step_0_are_the_checkpoints $PY -c "
import h5py, numpy as np, json, sys
ck, a, b, n = (h5py.File(p, 'r') for p in sys.argv[1:5])
assert np.array_equal(a['params'][:], ck['params'][:]) and np.array_equal(b['params'][:], ck['params'][:])
assert not np.array_equal(n['params'][:], ck['params'][:])
assert a.attrs['step'] == 1 if 'step' in a.attrs else True
init = json.loads(a.attrs['config'])['init']
assert init['checkpoint'].endswith('b.h5') and init['step'] == 0 and len(init['import']['sha256']) == 64, init
assert json.loads(b.attrs['config'])['init']['step'] == 3
" "$CK" "$T/init_imp/ckpt-00000001.h5" "$T/init_ours/ckpt-00000001.h5" "$T/init_none/ckpt-00000001.h5"
losses_equal init_import_and_ours_same_first_loss "$T/init_imp/loss.csv" "$T/init_ours/loss.csv" 0
check init_first_loss_differs_from_fresh sh -c "! cmp -s '$T/init_ours/loss.csv' '$T/init_none/loss.csv' && [ \"\$(cut -d, -f3 '$T/init_ours/loss.csv' | tail -1)\" != \"\$(cut -d, -f3 '$T/init_none/loss.csv' | tail -1)\" ]"
expect_error init_with_resume "--init starts a new run and --resume continues one" \
  "$I2PMAE" pretrain $INIT -o "$T/init_bad" --init "$CK" --resume
expect_error init_other_dims "architecture differs: tensor merge2.conv3.weight is (48,48) in the checkpoint but (64,48) here" \
  "$I2PMAE" pretrain $INIT -o "$T/init_bad" --init "$CK" --dims 12,24,64 --dec-dims 64,24
expect_error init_other_heads "architecture differs: heads is 2 in the checkpoint but 4 here" \
  $MPIRUN 2 "$I2PMAE" pretrain $INIT -o "$T/init_bad" --init "$T/b.h5" --heads 4
no_file init_bad_leaves_no_rundir "$T/init_bad"

# ---- fine-tuning checkpoints ----
check finetune_tiny "$I2PMAE" finetune --config "$TINY" --data "$T/tr.h5" --test "$T/tr.h5" --batch 8 --micro-batch 2 \
  --warmup-epochs 1 --lr 0.002 --checkpoint "$CK" -o "$T/ft" --epochs 2
mpi 2 "$I2PMAE" export --checkpoint "$T/ft/best.h5" --format official -o "$T/ft.safetensors" > "$T/ftexp.out" 2>&1
check export_finetune_json grep -q '"tensors":117,"params":132452,"step":[0-9]*,"kind":"finetune"' "$T/ftexp.out"
check export_finetune_strict_official $PY "$REF" check-finetune "$T/ft.safetensors"
check init_refuses_finetune_checkpoint_rc sh -c "! \"$I2PMAE\" pretrain $INIT -o '$T/init_bad' --init '$T/ft/best.h5' 2> '$T/initft.err'"
check init_refuses_finetune_checkpoint grep -q 'is a fine-tuning checkpoint; --init takes a pre-training one' "$T/initft.err"
mpi 2 "$I2PMAE" import --input "$T/ft.safetensors" -o "$T/ftb.h5" > "$T/ftimp.out" 2>&1
check import_finetune_json grep -q '"tensors":109,"params":132452,.*"config_from":"metadata"' "$T/ftimp.out"
$PY -c "
import sys; sys.path.insert(0, sys.argv[3]); import st_format
t, m = st_format.read(sys.argv[1])
st_format.write(sys.argv[2], {'module.' + k: v for k, v in t.items()}, {'format': 'pt'})
" "$T/ft.safetensors" "$T/ftofficial.safetensors" "$TOOLS"
"$I2PMAE" import --input "$T/ftofficial.safetensors" -o "$T/ftc.h5" --config "$TINY" > "$T/ftimp2.out" 2>&1
check import_finetune_from_shapes grep -q '"module_prefix":true,"config_from":"shapes and defaults"' "$T/ftimp2.out"
check import_finetune_same_arrays $PY -c "
import h5py, numpy as np, sys
a = h5py.File(sys.argv[1], 'r')
for p in sys.argv[2:]:
    b = h5py.File(p, 'r')
    for k in ('params', 'buffers'):
        assert np.array_equal(a[k][:], b[k][:]), (p, k)
" "$T/ft/best.h5" "$T/ftb.h5" "$T/ftc.h5"
for c in best ftb ftc; do
  f="$T/ft/best.h5"; [ $c = best ] || f="$T/$c.h5"
  "$I2PMAE" finetune --eval-only --checkpoint "$f" --test "$T/tr.h5" > "$T/ev_$c.out" 2>&1
done
check import_finetune_eval_only_same_accuracy sh -c "a=\$(grep -o '\"test_acc\":[^,]*,\"mean_class_acc\":[^,]*' '$T/ev_best.out') && [ -n \"\$a\" ] && grep -qF \"\$a\" '$T/ev_ftb.out' && grep -qF \"\$a\" '$T/ev_ftc.out'"
