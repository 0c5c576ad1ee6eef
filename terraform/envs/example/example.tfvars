# What this deployment needs besides main.tf (copy, rename, edit). No credentials here: they go into the secret.
region = "eu-west-1"

# Only for a copy of this directory outside terraform/envs/: the repository's build/, as an absolute path.
# build_dir = "/home/me/azs3copy/build"
