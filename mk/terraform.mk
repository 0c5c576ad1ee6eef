# Terraform, its offline provider mirror, the Lambda layers and function zips, checkov (issue 3).
# Every terraform call uses the CLI configuration written by tf-config, never the machine's own.

TF_MIRROR ?= /opt/tf-plugins
TF_RC := $(ROOT)/.local/terraformrc
TF := env -u AWS_CA_BUNDLE TF_CLI_CONFIG_FILE=$(TF_RC) TF_IN_AUTOMATION=1 terraform
TF_ROOTS := terraform/envs/local terraform/envs/example
LAMBDA_ARCH ?= arm64
LAMBDA_PYTHON ?= 3.12
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := $(ROOT)/.venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov

.PHONY: tf-config layers function-zips tf-fmt tf-validate checkov test-terraform FORCE

# Written on every run, replaced only when the text changes (make TF_MIRROR=/other tf-config takes effect;
# a second run leaves the file and its timestamp alone).
$(TF_RC): FORCE
	@test -d $(TF_MIRROR)/registry.terraform.io/hashicorp/aws || \
		{ echo "no hashicorp/aws provider under $(TF_MIRROR) (set TF_MIRROR)"; exit 1; }
	@mkdir -p $(dir $@)
	@printf '%s\n' \
		'# Written by make tf-config: providers come from the local mirror only.' \
		'provider_installation {' \
		'  filesystem_mirror {' \
		'    path    = "$(TF_MIRROR)"' \
		'    include = ["registry.terraform.io/hashicorp/*"]' \
		'  }' \
		'  direct {' \
		'    exclude = ["registry.terraform.io/hashicorp/*"]' \
		'  }' \
		'}' > $@.$$$$ && \
	if cmp -s $@.$$$$ $@; then rm -f $@.$$$$; else mv -f $@.$$$$ $@ && echo "wrote $@ (mirror $(TF_MIRROR))"; fi

tf-config: $(TF_RC) ## Write .local/terraformrc (providers from the local filesystem mirror, TF_MIRROR)

layers: venv ## Build build/layers/{azure-sdk,core}.zip for the Lambda runtime (LAMBDA_ARCH=arm64)
	$(PY) scripts/build_layers.py layers --arch $(LAMBDA_ARCH) --python-version $(LAMBDA_PYTHON)

function-zips: venv ## Zip each lambdas/<dir>/ into build/functions/<dir>.zip
	$(PY) scripts/build_layers.py functions

tf-fmt: ## terraform fmt -check over terraform/
	$(TF) fmt -check -recursive -diff terraform

tf-validate: tf-config ## terraform init (no backend) and validate each root configuration
	set -e; for root in $(TF_ROOTS); do \
		echo "== $$root"; \
		$(TF) -chdir=$$root init -input=false -no-color -backend=false >/dev/null; \
		$(TF) -chdir=$$root validate -no-color; \
	done

$(CHECKOV): mk/terraform.mk
	test -x $(CHECKOV_VENV)/bin/python || python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/pip install -q checkov==$(CHECKOV_VERSION)
	touch $@

checkov: $(CHECKOV) ## checkov over terraform/ (skips are justified on the line they skip)
	$(CHECKOV) --quiet --compact --framework terraform --directory terraform --skip-download

test-terraform: venv tf-config layers function-zips $(CHECKOV) ## Terraform checks: fmt, validate, checkov, apply/plan/destroy against moto
	$(PY) -m pytest tests/terraform -q
