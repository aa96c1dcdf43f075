# Two entry points: `make demo` (the main job) and `make test` (the suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install models push-onpolicy push-cpu bench clean

$(STAMP): setup.cfg pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: its CPU wheel is on local disk; an unpinned torch pulls a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[all]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	MUJOCO_GL=egl $(BIN)/hvp demo --out runs/demo

test: $(STAMP)
	MUJOCO_GL=egl LP_NUM_THREADS=1 $(BIN)/python -m pytest -q

bench: $(STAMP)
	MUJOCO_GL=egl $(BIN)/python bench/collect.py

# The shipped checkpoints/ were made by this target: the world models on one H100 GPU (5 runs side by side,
# ~8 min; on the 2-core CPU each takes a few hours; device chosen automatically), the distance and subgoal models
# (3000 / 2000 steps, 2-3 min each) and the graph nodes on the CPU. The world models predate the cpu preset's
# learning-rate decay and foreground weight: --lr 6e-4 --final-lr-fraction 1 --foreground-weight 5 is what they
# were trained at.
MODEL_TASKS := maze-easy maze-hard push
EPISODES_maze-easy := 400
EPISODES_maze-hard := 300
EPISODES_push := 300
models: $(STAMP)
	for task in $(MODEL_TASKS); do \
	  episodes=$$(case $$task in maze-easy) echo $(EPISODES_maze-easy);; maze-hard) echo $(EPISODES_maze-hard);; *) echo $(EPISODES_push);; esac); \
	  MUJOCO_GL=egl $(BIN)/hvp collect --env $$task --episodes $$episodes --seed 0 --out runs/data/$$task.hdf5 && \
	  $(BIN)/hvp train --data runs/data/$$task.hdf5 --preset cpu --steps 5500 --batch-size 64 --lr 6e-4 \
	    --final-lr-fraction 1 --foreground-weight 5 --seed 0 --out runs/$$task && \
	  $(BIN)/hvp train-distance runs/$$task --data runs/data/$$task.hdf5 --seed 0 && \
	  mkdir -p checkpoints/$$task && cp -r runs/$$task/config.json runs/$$task/model.safetensors runs/$$task/distance \
	    checkpoints/$$task/ || exit 1; \
	done
	# subgoal generators (generated subgoals; the maze-easy one serves bench/grids/cpu.yaml) and the maze-hard
	# trajectory-graph nodes (all 300 episodes, what the demo plans through)
	for task in maze-easy maze-hard; do \
	  $(BIN)/hvp train-subgoals runs/$$task --data runs/data/$$task.hdf5 --seed 0 && \
	  cp -r runs/$$task/subgoals checkpoints/$$task/ || exit 1; \
	done
	MUJOCO_GL=egl $(BIN)/hvp graph-nodes checkpoints/maze-hard --data runs/data/maze-hard.hdf5

# checkpoints/push-onpolicy (planned with --cost readout): checkpoints/push and a state readout, then rounds of
# PlaNet's data loop: 120 episodes of latent MPC with the readout cost (horizon 14, action noise 0.3), a full
# fine-tune on all on-policy episodes so far with the exploration data mixed into every batch, a readout refit;
# last, a fine-tune with latent overshooting. Needs runs/data/push.hdf5 (make models). About 75 minutes on 2 cores.
PUSH_ROUNDS := 1 2 3
PUSH_ONPOLICY_DATA := $(foreach round,$(PUSH_ROUNDS),runs/data/push-onpolicy-r$(round).hdf5)
push-onpolicy: $(STAMP)
	MUJOCO_GL=egl $(BIN)/hvp collect --env push --policy push --episodes 200 --seed 400000 \
	  --out runs/data/push-policy-pushes.hdf5
	rm -rf runs/push-r0 && mkdir -p runs/push-r0 && \
	  cp checkpoints/push/config.json checkpoints/push/model.safetensors runs/push-r0/
	$(BIN)/hvp train-readout runs/push-r0 --data runs/data/push.hdf5 runs/data/push-policy-pushes.hdf5 --seed 0
	previous=runs/push-r0; onpolicy=""; \
	for round in $(PUSH_ROUNDS); do \
	  MUJOCO_GL=egl $(BIN)/hvp collect --env push --policy mpc --model $$previous --cost readout --horizon 14 \
	    --episodes 120 --seed $$((round * 1000)) --out runs/data/push-onpolicy-r$$round.hdf5 && \
	  onpolicy="$$onpolicy runs/data/push-onpolicy-r$$round.hdf5" && rm -rf runs/push-r$$round && \
	  $(BIN)/hvp finetune $$previous --data $$onpolicy --sim-data runs/data/push.hdf5 --out runs/push-r$$round \
	    --seed 0 && \
	  $(BIN)/hvp train-readout runs/push-r$$round --data runs/data/push.hdf5 runs/data/push-policy-pushes.hdf5 \
	    $$onpolicy --seed 0 && previous=runs/push-r$$round || exit 1; \
	done
	# then latent overshooting on the same data: the prior trained on the open-loop rollouts the planner uses
	# (docs/planning.md: 29/50 against 22/50 for the last round's weights)
	rm -rf runs/push-os && $(BIN)/hvp finetune runs/push-r$(lastword $(PUSH_ROUNDS)) --data $(PUSH_ONPOLICY_DATA) \
	  --sim-data runs/data/push.hdf5 --overshooting 10 --steps 600 --patience 6 --seed 0 --threads 1 --out runs/push-os
	$(BIN)/hvp train-readout runs/push-os --data runs/data/push.hdf5 runs/data/push-policy-pushes.hdf5 \
	  $(PUSH_ONPOLICY_DATA) --seed 0
	mkdir -p checkpoints/push-onpolicy && \
	  cp -r runs/push-os/config.json runs/push-os/model.safetensors runs/push-os/readout checkpoints/push-onpolicy/
	# the temporal distance too, so bench/planning.py can set every cost side by side on this model, and the state
	# dynamics that hvp plan --imagine state rolls plans out with
	$(BIN)/hvp train-distance checkpoints/push-onpolicy --data runs/data/push.hdf5 --seed 0
	$(BIN)/hvp train-state-dynamics checkpoints/push-onpolicy --data runs/data/push.hdf5 \
	  runs/data/push-policy-pushes.hdf5 --seed 0

# push planned from a world model trained on this CPU (no on-policy rounds): the cpu preset with the learned
# background at batch weight 3, the reference blend and 8 keypoints, on 1300 exploration episodes
# (docs/world_model.md), its state readout, and the state dynamics that the planner imagines in
# (hvp plan --imagine state, docs/planning.md). About 25 minutes on 2 cores, planning included.
push-cpu: $(STAMP)
	test -f runs/data/push-1300.hdf5 || MUJOCO_GL=egl $(BIN)/hvp collect --env push --episodes 1300 --seed 0 \
	  --workers 2 --out runs/data/push-1300.hdf5
	test -f runs/data/push-policy-pushes.hdf5 || MUJOCO_GL=egl $(BIN)/hvp collect --env push --policy push \
	  --episodes 200 --seed 400000 --out runs/data/push-policy-pushes.hdf5
	$(BIN)/hvp train --data runs/data/push-1300.hdf5 --preset cpu --seed 0 --learned-background \
	  --foreground-reference batch --foreground-weight 3 --reference-blend --keypoints 8 --out runs/push-cpu
	$(BIN)/hvp train-readout runs/push-cpu --data runs/data/push-1300.hdf5 runs/data/push-policy-pushes.hdf5 \
	  --seed 0
	$(BIN)/hvp train-state-dynamics runs/push-cpu --data runs/data/push-1300.hdf5 \
	  runs/data/push-policy-pushes.hdf5 --seed 0
	MUJOCO_GL=egl $(BIN)/hvp plan --env push --model runs/push-cpu --cost readout --imagine state --horizon 14 \
	  --episodes 50 --seed 0

clean:
	rm -rf runs build *.egg-info
