BEGIN TRANSACTION;
CREATE TABLE preferences (
	"key" VARCHAR(64) NOT NULL, 
	value JSON NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY ("key")
);
INSERT INTO "preferences" VALUES('price_per_s','{"runway": 0.05}','2026-11-30 09:33:41.771218');
CREATE TABLE runs (
	id VARCHAR(32) NOT NULL, 
	created_at DATETIME NOT NULL, 
	inputs JSON NOT NULL, 
	options JSON NOT NULL, 
	providers JSON NOT NULL, 
	idempotency_key VARCHAR(128), 
	owner VARCHAR(320) NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (idempotency_key)
);
INSERT INTO "runs" VALUES('93ca8c5b3160','2026-11-30 09:33:41.740855','{"video": "/media/drive.mp4", "image": "/media/face.png", "character_video": null}','{"expression_intensity": null, "body_control": null, "seed": 7, "ratio": null}','["runway", "local"]','run-key-1','ana@example.com');
CREATE TABLE task_analyses (
	task_id VARCHAR(32) NOT NULL, 
	state VARCHAR(16) NOT NULL, 
	result_path TEXT, 
	output JSON, 
	fidelity JSON, 
	error TEXT, 
	lease_until DATETIME, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (task_id), 
	FOREIGN KEY(task_id) REFERENCES tasks (id) ON DELETE CASCADE
);
INSERT INTO "task_analyses" VALUES('92c25dae3d65','running','/data/results/r3.mp4',NULL,NULL,NULL,'2026-11-30 09:34:41.768254','2026-11-30 09:33:41.768254');
CREATE TABLE task_events (
	id INTEGER NOT NULL, 
	task_id VARCHAR(32) NOT NULL, 
	at DATETIME NOT NULL, 
	status VARCHAR(16), 
	progress FLOAT, 
	message TEXT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(task_id) REFERENCES tasks (id) ON DELETE CASCADE
);
INSERT INTO "task_events" VALUES(1,'96e2164e97f7','2026-11-30 09:33:41.745711','queued',0.0,'Task created (queued).');
INSERT INTO "task_events" VALUES(2,'c397c6cbb6fb','2026-11-30 09:33:41.752294','running',0.0,'Task created (running).');
INSERT INTO "task_events" VALUES(3,'92c25dae3d65','2026-11-30 09:33:41.754553','queued',0.0,'Task created (queued).');
INSERT INTO "task_events" VALUES(4,'92c25dae3d65','2026-11-30 09:33:41.755245','succeeded',1.0,'queued → succeeded');
INSERT INTO "task_events" VALUES(5,'36e0a8ff3f2c','2026-11-30 09:33:41.757010','queued',0.0,'Task created (queued).');
INSERT INTO "task_events" VALUES(6,'36e0a8ff3f2c','2026-11-30 09:33:41.757702','succeeded',NULL,'queued → succeeded');
INSERT INTO "task_events" VALUES(7,'b03c0d4af873','2026-11-30 09:33:41.759484','queued',0.0,'Task created (queued).');
INSERT INTO "task_events" VALUES(8,'b03c0d4af873','2026-11-30 09:33:41.760170','succeeded',NULL,'queued → succeeded');
INSERT INTO "task_events" VALUES(9,'d55e9d2d38f7','2026-11-30 09:33:41.761783','queued',0.0,'Task created (queued).');
INSERT INTO "task_events" VALUES(10,'d55e9d2d38f7','2026-11-30 09:33:41.762425','succeeded',NULL,'queued → succeeded');
INSERT INTO "task_events" VALUES(11,'488ff10b8084','2026-11-30 09:33:41.763743','queued',0.0,'Task created (queued).');
INSERT INTO "task_events" VALUES(12,'488ff10b8084','2026-11-30 09:33:41.764373','failed',NULL,'queued → failed');
INSERT INTO "task_events" VALUES(13,'082001269885','2026-11-30 09:33:41.765857','queued',0.0,'Task created (queued).');
INSERT INTO "task_events" VALUES(14,'082001269885','2026-11-30 09:33:41.766463','succeeded',NULL,'queued → succeeded');
INSERT INTO "task_events" VALUES(15,'96e2164e97f7','2026-11-30 09:33:41.767967',NULL,NULL,'Polled: still queued.');
CREATE TABLE tasks (
	id VARCHAR(32) NOT NULL, 
	provider VARCHAR(32) NOT NULL, 
	provider_task_id VARCHAR(256), 
	status VARCHAR(16) NOT NULL, 
	progress FLOAT NOT NULL, 
	error TEXT, 
	error_kind VARCHAR(32), 
	result_url TEXT, 
	result_path TEXT, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	started_at DATETIME, 
	finished_at DATETIME, 
	next_poll_at DATETIME, 
	poll_failures INTEGER NOT NULL, 
	run_id VARCHAR(32), 
	inputs JSON, 
	options JSON NOT NULL, 
	tracked INTEGER NOT NULL, 
	retry_of VARCHAR(32), 
	cost_estimate FLOAT, 
	meta JSON NOT NULL, 
	idempotency_key VARCHAR(160), 
	owner VARCHAR(320) NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE SET NULL, 
	UNIQUE (idempotency_key)
);
INSERT INTO "tasks" VALUES('96e2164e97f7','runway','rw-queued-1','queued',0.0,NULL,NULL,NULL,NULL,'2026-11-30 09:33:41.745711','2026-11-30 09:33:41.748131',NULL,NULL,'2026-11-30 09:33:41.745707',0,'93ca8c5b3160','{"video": "/media/drive.mp4", "image": "/media/face.png", "character_video": null}','{"expression_intensity": null, "body_control": null, "seed": null, "ratio": null}',1,NULL,NULL,'{}','k-queued','ana@example.com');
INSERT INTO "tasks" VALUES('c397c6cbb6fb','local','local-run-2','running',0.4,NULL,NULL,NULL,NULL,'2026-11-30 09:33:41.752294','2026-11-30 09:33:41.753133','2026-11-30 09:33:41.752287',NULL,'2026-11-30 09:33:41.752289',0,'93ca8c5b3160','{"video": "/media/drive.mp4", "image": "/media/face.png", "character_video": null}','{"expression_intensity": null, "body_control": null, "seed": null, "ratio": null}',1,NULL,NULL,'{}',NULL,'ana@example.com');
INSERT INTO "tasks" VALUES('92c25dae3d65','cometapi','cm-done-3','succeeded',1.0,NULL,NULL,'https://cdn.invalid/r3.mp4','/data/results/r3.mp4','2026-11-30 09:33:41.754553','2026-11-30 09:33:41.755245',NULL,'2026-11-30 09:33:41.754549',NULL,0,NULL,'{"video": "/media/drive.mp4", "image": "/media/face.png", "character_video": null}','{"expression_intensity": null, "body_control": null, "seed": null, "ratio": null}',1,NULL,NULL,'{}',NULL,'local');
INSERT INTO "tasks" VALUES('36e0a8ff3f2c','makevid','mv-gaveup-4','succeeded',0.0,'The result link expired before it could be saved.','expired','https://cdn.invalid/r4.mp4',NULL,'2026-11-30 09:33:41.757010','2026-11-30 09:33:41.757702',NULL,'2026-11-30 09:33:41.757007',NULL,0,NULL,'{"video": "/media/drive.mp4", "image": "/media/face.png", "character_video": null}','{"expression_intensity": null, "body_control": null, "seed": null, "ratio": null}',1,NULL,NULL,'{"archive_gave_up": true, "attempts": 6}',NULL,'local');
INSERT INTO "tasks" VALUES('b03c0d4af873','liangxin','lx-pending-5','succeeded',0.0,NULL,NULL,'https://cdn.invalid/r5.mp4',NULL,'2026-11-30 09:33:41.759484','2026-11-30 09:33:41.760170',NULL,'2026-11-30 09:33:41.759480','2026-11-30 09:36:11.745699',0,NULL,'{"video": "/media/drive.mp4", "image": "/media/face.png", "character_video": null}','{"expression_intensity": null, "body_control": null, "seed": null, "ratio": null}',1,NULL,NULL,'{"archiver": "monitor-abc", "note": "kept"}',NULL,'local');
INSERT INTO "tasks" VALUES('d55e9d2d38f7','runway','rw-disk-6','succeeded',0.0,'The disk is full.','disk_full','https://cdn.invalid/r6.mp4',NULL,'2026-11-30 09:33:41.761783','2026-11-30 09:33:41.762425',NULL,'2026-11-30 09:33:41.761780',NULL,0,NULL,'{"video": "/media/drive.mp4", "image": "/media/face.png", "character_video": null}','{"expression_intensity": null, "body_control": null, "seed": null, "ratio": null}',1,NULL,NULL,'{}',NULL,'local');
INSERT INTO "tasks" VALUES('488ff10b8084','runway','rw-failed-7','failed',0.0,'Provider said no.','provider',NULL,NULL,'2026-11-30 09:33:41.763743','2026-11-30 09:33:41.764373',NULL,'2026-11-30 09:33:41.763740',NULL,0,NULL,'{"video": "/media/drive.mp4", "image": "/media/face.png", "character_video": null}','{"expression_intensity": null, "body_control": null, "seed": null, "ratio": null}',1,NULL,NULL,'{}',NULL,'local');
INSERT INTO "tasks" VALUES('082001269885','local','local-unarch-8','succeeded',0.0,NULL,NULL,'file:///tmp/r8.mp4',NULL,'2026-11-30 09:33:41.765857','2026-11-30 09:33:41.766463',NULL,'2026-11-30 09:33:41.765851',NULL,0,NULL,'{"video": "/media/drive.mp4", "image": "/media/face.png", "character_video": null}','{"expression_intensity": null, "body_control": null, "seed": null, "ratio": null}',1,NULL,NULL,'{}',NULL,'local');
CREATE TABLE uploads (
	owner VARCHAR(320) NOT NULL, 
	path VARCHAR(600) NOT NULL, 
	digest VARCHAR(64) NOT NULL, 
	size_bytes INTEGER NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (owner, path)
);
INSERT INTO "uploads" VALUES('ana@example.com','uploads/abc123/drive.mp4','abc123',2048,'2026-11-30 09:33:41.774196');
CREATE TABLE votes (
	run_id VARCHAR(32) NOT NULL, 
	winner VARCHAR(32) NOT NULL, 
	contenders JSON NOT NULL, 
	note TEXT, 
	blind INTEGER NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (run_id), 
	FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
INSERT INTO "votes" VALUES('93ca8c5b3160','runway','["runway", "local"]','sharper',0,'2026-11-30 09:33:41.768792');
CREATE INDEX ix_runs_owner ON runs (owner);
CREATE INDEX ix_uploads_digest ON uploads (digest);
CREATE INDEX ix_tasks_created ON tasks (created_at);
CREATE INDEX ix_tasks_status_poll ON tasks (status, next_poll_at);
CREATE INDEX ix_tasks_provider_ptid ON tasks (provider, provider_task_id);
CREATE INDEX ix_tasks_run ON tasks (run_id);
CREATE INDEX ix_tasks_owner_created ON tasks (owner, created_at);
CREATE INDEX ix_task_events_task_id ON task_events (task_id);
COMMIT;
