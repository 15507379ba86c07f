package zhiqitetest

import "fmt"

// Model is a row of queryModelList.
type Model struct {
	ID         int
	Checkpoint string // sdModelCheckpoint
	Name       string // sdModelName
	Base       string // modelBaseModel
	Type       string // modelType
	Status     int    // 0 offline, 1 online
	Adult      bool   // isAdult
	Cover      string // modelCoverImgUrl2
}

// LoRA is a row of queryLoraList.
type LoRA struct {
	ID           int
	Name         string // sdLoraName
	Base         string // loraBaseModel
	FileName     string // sdLoraFileName
	SimplifyName string // sdLoraFileSimplifyName: what a prompt names
	Status       int    // loraStatus
	Adult        bool
	Cover        string
}

// VAE is a row of queryVaeList.
type VAE struct {
	ID       int
	FileName string
}

// Embedding is a row of queryEmbeddingList.
type Embedding struct {
	ID           int
	Name         string
	SimplifyName string
}

// Catalog is what the fake's list endpoints serve.
type Catalog struct {
	Models     []Model
	LoRAs      []LoRA
	VAEs       []VAE
	Embeddings []Embedding
}

// DefaultCatalog holds the seed's own rows, plus enough generated ones,
// some offline and some adult, that every list needs more than one page of 50.
func DefaultCatalog() Catalog {
	c := Catalog{
		Models: []Model{
			{ID: 39, Checkpoint: "photon_v1_84728.safetensors", Name: "Photon", Base: "SD 1.5", Type: "Checkpoint", Status: 1,
				Cover: "https://aigcoss.dobestai.com/api-model-file/model-img-file/99f2494c430a9d7f4e6ff7b5a997e678.jpeg"},
			// The checkpoint of the seed's request examples.
			{ID: 40, Checkpoint: "revAnimated_v122_7371.safetensors", Name: "ReV Animated", Base: "SD 1.5", Type: "Checkpoint", Status: 1},
		},
		LoRAs: []LoRA{
			{ID: 8741, Name: "Hayasaka Ai 早坂愛 / Kaguya-sama wa Kokurasetai ", Base: "SD 1.5",
				FileName: "hayasaka_ai_v10_26390.safetensors", SimplifyName: "hayasaka_ai_v10_26390", Status: 1,
				Cover: "https://aigcoss.dobestai.com/api-model-file/lora-img-file/fcf3ffdc06b6f2c73fc2ad2758e23daa.jpeg"},
		},
		VAEs: []VAE{{ID: 2, FileName: "k1F8Anime2_k1F8Anime2VAE.ckpt"}, {ID: 3, FileName: "vae-ft-mse-840000-ema-pruned.ckpt"}},
	}
	for i := 1; i <= 58; i++ {
		c.Models = append(c.Models, Model{
			ID: 100 + i, Checkpoint: fmt.Sprintf("fake_model_%02d.safetensors", i), Name: fmt.Sprintf("Fake model %d", i),
			Base: "SD 1.5", Type: "Checkpoint", Status: boolInt(i%10 != 0), Adult: i%7 == 0,
		})
	}
	for i := 1; i <= 54; i++ {
		c.LoRAs = append(c.LoRAs, LoRA{
			ID: 9000 + i, Name: fmt.Sprintf("Fake style %d", i), Base: "SD 1.5",
			FileName: fmt.Sprintf("fake_lora_%02d.safetensors", i), SimplifyName: fmt.Sprintf("fake_lora_%02d", i),
			Status: boolInt(i%9 != 0), Adult: i%5 == 0,
		})
	}
	for i, name := range []string{"FastNegativeV2", "bad-artist-anime", "bad-artist", "bad-hands-5", "bad-image-v2-39000",
		"bad-picture-chill-75v", "bad_prompt", "bad_prompt_version2", "badhandv4", "by-bad-artist-neg"} {
		c.Embeddings = append(c.Embeddings, Embedding{ID: 3 + i, Name: name + ".pt", SimplifyName: name})
	}
	return c
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (m Model) row() map[string]any {
	return map[string]any{
		"id": m.ID, "sdModelCheckpoint": m.Checkpoint, "sdModelName": m.Name, "modelBaseModel": m.Base,
		"modelHash": "EC41BD2A8271ACDE4AE81CAC004D9F3300E7FB0870EAE8CBFE0BBC4EF8E27F91", "modelType": m.Type,
		"modelVersion": "v1", "modelStatus": m.Status, "modelUploadStatus": 2,
		"modelImgUrl2": m.Cover + "," + m.Cover, "modelCoverImgUrl2": m.Cover, "isAdult": boolInt(m.Adult),
	}
}

func (l LoRA) row() map[string]any {
	return map[string]any{
		"id": l.ID, "sdLoraName": l.Name, "loraBaseModel": l.Base, "sdLoraFileName": l.FileName,
		"sdLoraFileSimplifyName": l.SimplifyName, "loraVersion": "v1", "loraStatus": l.Status, "loraUploadStatus": 0,
		"loraImgUrl2": l.Cover, "loraCoverImgUrl2": l.Cover, "isAdult": boolInt(l.Adult),
	}
}

func (v VAE) row() map[string]any { return map[string]any{"id": v.ID, "vaeFileName": v.FileName} }

func (e Embedding) row() map[string]any {
	return map[string]any{"id": e.ID, "embeddingName": e.Name, "embeddingSimplifyName": e.SimplifyName}
}
